import Foundation

/// A classifier's settings from a PyTorch `state_dict`'s names and shapes (no LSTMVision metadata), as
/// python/lstmvision_torch.py names them: `renet.{k}.vertical.*` is a ReNet, `lstm.*` a row- or patch-LSTM.
extension ModelFile {
    static func infer(_ t: [String: Tensor], hints: ModelFileHints, source: String) throws -> ModelConfig {
        try hints.check(source: source)
        if t["renet.0.vertical.weight_ih_l0"] != nil { return try inferReNet(t, hints: hints, source: source) }
        if t["lstm.weight_ih_l0"] != nil { return try inferSequence(t, hints: hints, source: source) }
        throw CheckpointError.mismatch("\(source): not a classifier checkpoint (a row- or patch-LSTM needs"
                                       + " lstm.weight_ih_l0 and fc.weight, a ReNet renet.0.vertical.weight_ih_l0 and"
                                       + " fc.weight; has \(t.keys.sorted().prefix(4).joined(separator: ", ")))")
    }

    /// The hidden size of the LSTM whose parameters start with `prefix` (`weight_hh_l0` [4h, h]), checked against
    /// its `weight_ih_l0` [4h, input]; returns (hidden, input).
    static func lstmSizes(_ t: [String: Tensor], _ prefix: String, source: String) throws -> (hidden: Int, input: Int) {
        guard let ih = matrixShape(t, prefix + "weight_ih_l0"), let hh = matrixShape(t, prefix + "weight_hh_l0"),
              hh.rows == 4 * hh.columns, ih.rows == hh.rows else {
            let shapes = [prefix + "weight_ih_l0", prefix + "weight_hh_l0"].map { "\(t[$0]?.shape ?? [])" }
            throw CheckpointError.mismatch("\(source): \(prefix)weight_ih_l0 and weight_hh_l0 have shapes"
                                           + " \(shapes.joined(separator: " and ")), not [4·hidden, input] and"
                                           + " [4·hidden, hidden]")
        }
        return (hh.columns, ih.columns)
    }

    /// The classes of `fc.weight` [classes, features] and its features.
    static func head(_ t: [String: Tensor], _ name: String, source: String) throws -> (rows: Int, columns: Int) {
        guard let fc = matrixShape(t, name) else {
            throw CheckpointError.mismatch("\(source): \(name) is missing or not a matrix (shape"
                                           + " \(t[name]?.shape ?? []))")
        }
        return fc
    }

    /// Row- or patch-LSTM: `lstm.weight_ih_l0` reads W·C features (a row) or k·k·C (a patch); which, and the image
    /// size, come from `hints`. Without them it is a row-LSTM of square images of its input's width, one channel.
    static func inferSequence(_ t: [String: Tensor], hints: ModelFileHints, source: String) throws -> ModelConfig {
        let (hidden, input) = try lstmSizes(t, "lstm.", source: source)
        var layers = 0
        while t["lstm.weight_ih_l\(layers)"] != nil { layers += 1 }
        let bi = t["lstm.weight_ih_l0_reverse"] != nil
        let classes = try head(t, "fc.weight", source: source).rows
        func make(_ kind: ModelConfig.Kind, _ h: Int, _ w: Int, _ c: Int, patch: Int = 2) -> ModelConfig {
            ModelConfig(kind: kind, height: h, width: w, channels: c, hidden: hidden, layers: layers,
                        bidirectional: bi, classes: classes, patch: patch)
        }
        guard let w = hints.width, let h = hints.height else {
            let c = hints.channels ?? 1
            guard input % c == 0 else {
                throw CheckpointError.mismatch("\(source): lstm.weight_ih_l0 reads \(input) features, not rows of"
                                               + " \(c) channel(s)")
            }
            return make(.row, input / c, input / c, c)
        }
        let channels = hints.channels.map { [$0] } ?? [1, 3]
        if let c = channels.first(where: { w * $0 == input }) { return make(.row, h, w, c) }
        for c in channels where input % c == 0 {
            if let k = exactSquareRoot(input / c), h % k == 0, w % k == 0 { return make(.patch, h, w, c, patch: k) }
        }
        throw CheckpointError.mismatch("\(source): lstm.weight_ih_l0 reads \(input) features: neither a row nor a k×k"
                                       + " patch of the data's \(hints.imageDescription) images")
    }

    /// ReNet: `renet.0.vertical.weight_ih_l0` reads k·k·C features per patch and `fc1` (or `fc` without it) the
    /// flattened grid of 2·hidden per patch; the image is the hinted size, or else the square these give.
    static func inferReNet(_ t: [String: Tensor], hints: ModelFileHints, source: String) throws -> ModelConfig {
        var layers = 0
        while t["renet.\(layers).vertical.weight_ih_l0"] != nil { layers += 1 }
        let (hidden, input) = try lstmSizes(t, "renet.0.vertical.", source: source)
        let fc = try head(t, "fc.weight", source: source)
        let fc1 = t["fc1.weight"] == nil ? nil : try head(t, "fc1.weight", source: source)
        let fcHidden = fc1?.rows ?? 0, flat = fc1?.columns ?? fc.columns
        guard flat % (2 * hidden) == 0 else {
            throw CheckpointError.mismatch("\(source): \(fcHidden > 0 ? "fc1" : "fc").weight reads \(flat) features,"
                                           + " not a whole number of patches of 2·\(hidden)")
        }
        let cells = flat / (2 * hidden)
        func make(_ h: Int, _ w: Int, _ c: Int, _ k: Int) -> ModelConfig {
            ModelConfig(kind: .renet, height: h, width: w, channels: c, hidden: hidden, layers: layers,
                        classes: fc.rows, patch: k, fcHidden: fcHidden)
        }
        for c in hints.channels.map({ [$0] }) ?? [1, 3] where input % c == 0 {
            guard let k = exactSquareRoot(input / c) else { continue }
            if let w = hints.width, let h = hints.height {
                if h % k == 0, w % k == 0, (h / k) * (w / k) == cells { return make(h, w, c, k) }
            } else if let g = exactSquareRoot(cells) {
                return make(g * k, g * k, c, k)
            }
        }
        let size = hints.width == nil ? "a square image (give the image size)" : "\(hints.imageDescription) images"
        throw CheckpointError.mismatch("\(source): a ReNet reading \(input) features per patch and \(cells) patches"
                                       + " does not fit \(size)")
    }
}
