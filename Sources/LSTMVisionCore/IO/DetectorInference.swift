import Foundation

/// A detector's settings from a PyTorch `state_dict`'s names and shapes (no LSTMVision metadata), as
/// python/lstmvision_torch.py's `LSTMDetector` names them: convolutions at `encoder.{i}` of an `nn.Sequential`
/// (conv, ReLU, MaxPool2d per pooling stage, then conv, ReLU), ReNet sweeps at `encoder.{k}` or, after convolutions,
/// `context.{k}`, `decoder.lstm`, `head` and `refiner.*`. The input size, K and the refiner's context come from
/// `ModelFileHints`.
extension DetectorFile {
    /// Whether a file holds a detector: its metadata says so, or its tensors have the decoder and head.
    public static func isDetector(metadata: [String: String], tensors: [String: Tensor]) -> Bool {
        metadata[configKey] != nil
            || (metadata[ModelFile.configKey] == nil && tensors["decoder.lstm.weight_ih_l0"] != nil
                && tensors["head.weight"] != nil)
    }

    static func infer(_ t: [String: Tensor], hints: ModelFileHints, source: String) throws -> DetectorConfig {
        try hints.check(source: source)
        func bad(_ m: String) -> CheckpointError { .mismatch("\(source): \(m)") }
        guard t["decoder.lstm.weight_ih_l0"] != nil, t["head.weight"] != nil else {
            throw bad("not a detector checkpoint (no \(configKey) metadata, nor decoder.lstm.weight_ih_l0 and"
                      + " head.weight)")
        }
        // The convolutions, by nn.Sequential index: a gap of 3 after a pooled one, of 2 after the others.
        let indices = t.keys.compactMap { key -> Int? in
            guard key.hasPrefix("encoder."), key.hasSuffix(".weight") else { return nil }
            return Int(key.dropFirst("encoder.".count).dropLast(".weight".count))
        }.sorted()
        let gaps = zip(indices.dropFirst(), indices).map { $0 - $1 }
        guard indices.first ?? 0 == 0, gaps.allSatisfy({ $0 == 2 || $0 == 3 }),
              gaps.drop(while: { $0 == 3 }).allSatisfy({ $0 == 2 }) else {
            throw bad("encoder convolutions at nn.Sequential indices \(indices) are not (conv, ReLU, MaxPool2d)…"
                      + " (conv, ReLU)…")
        }
        var convWidths: [Int] = [], channels = 0
        for i in indices {
            guard let w = t["encoder.\(i).weight"], w.rank == 4, w.shape[0] > 0, w.shape[1] > 0,
                  w.shape[2] == 3, w.shape[3] == 3 else {
                throw bad("encoder.\(i).weight has shape \(t["encoder.\(i).weight"]?.shape ?? []), not a 3×3"
                          + " convolution's [out, in, 3, 3]")
            }
            if convWidths.isEmpty { channels = w.shape[1] }
            convWidths.append(w.shape[0])
        }
        // Pooling stages: the gaps of 3, and the last convolution's when all gaps are 3 (its MaxPool2d has no
        // tensors).
        let threes = gaps.filter { $0 == 3 }.count
        var stages = gaps.contains(2) || indices.isEmpty ? [threes] : [threes, threes + 1].filter { $0 > 0 }
        guard indices.isEmpty || stages != [0] else {
            throw bad("encoder convolutions at nn.Sequential indices \(indices) have no MaxPool2d between them")
        }
        // The sweeps.
        let sweepPrefix = t["encoder.0.vertical.weight_ih_l0"] != nil ? "encoder"
                        : t["context.0.vertical.weight_ih_l0"] != nil ? "context" : nil
        var renetWidths: [Int] = []
        if let p = sweepPrefix {
            while t["\(p).\(renetWidths.count).vertical.weight_ih_l0"] != nil {
                renetWidths.append(try ModelFile.lstmSizes(t, "\(p).\(renetWidths.count).vertical.", source: source)
                    .hidden)
            }
        }
        let encoder: DetectorConfig.Encoder
        switch (convWidths.isEmpty, sweepPrefix) {
        case (false, nil): encoder = .conv
        case (true, "encoder"?): encoder = .renet
        case (false, "context"?): encoder = .convRenet
        default:
            throw bad("no encoder LSTMVision knows (3×3 convolutions at encoder.{i}, ReNet sweeps at encoder.{k},"
                      + " or both with the sweeps at context.{k})")
        }
        if encoder.hasSweeps {
            // The first sweep reads each cell's stride×stride pixels (beside its convolutional feature).
            let read = try ModelFile.lstmSizes(t, "\(sweepPrefix!).0.vertical.", source: source).input
                - (convWidths.last ?? 0)
            let options = encoder == .renet ? (hints.channels.map { [$0] } ?? [1, 3]) : [channels]
            guard let c = options.first(where: { read > 0 && read % $0 == 0 && exactSquareRoot(read / $0) != nil }),
                  let side = exactSquareRoot(read / c), side >= 2, side.nonzeroBitCount == 1 else {
                throw bad("the first ReNet sweep reads \(read) pixel features per cell: not stride×stride×channels")
            }
            if encoder == .renet { channels = c }
            stages = [side.trailingZeroBitCount]
        }
        if let s = hints.stride {
            guard stages.contains(s.trailingZeroBitCount), s.nonzeroBitCount == 1 else {
                throw bad("the stride \(s) does not fit the encoder (its stride is \(stages.map { 1 << $0 }))")
            }
            stages = [s.trailingZeroBitCount]
        }
        let (hidden, features) = try ModelFile.lstmSizes(t, "decoder.lstm.", source: source)
        let featureSize = (convWidths.last ?? 0) + 2 * (renetWidths.last ?? 0)
        guard features == featureSize else {
            throw bad("decoder.lstm reads \(features) features, the encoder gives \(featureSize)")
        }
        let head = try ModelFile.head(t, "head.weight", source: source)
        guard head.rows > 6 else { throw bad("head.weight has \(head.rows) outputs, not 6 + classes") }
        let classes = head.rows - 6
        var refiner: BoxRefiner.Config?
        if t["refiner.rows.weight_ih_l0"] != nil {
            let (h, read) = try ModelFile.lstmSizes(t, "refiner.rows.", source: source)
            guard read % (channels + 1) == 0 else {
                throw bad("refiner.rows reads \(read) features, not crop size × \(channels + 1)")
            }
            refiner = BoxRefiner.Config(cropSize: read / (channels + 1), context: hints.refinerContext, hidden: h)
        }
        // Which of the head's inputs there are: the skip and fine features (and, with it, the pooling stages).
        // Defaults first: skip, fine with convolutions, stride 8.
        let preferred = stages.sorted { ($0 == 3 ? 0 : 1, -$0) < ($1 == 3 ? 0 : 1, -$1) }
        for p in preferred where p >= 1 && p <= convWidths.count || !encoder.hasConvolutions {
            for skip in [true, false] {
                for fine in encoder.hasConvolutions ? [true, false] : [false] {
                    guard hidden + (skip ? featureSize : 0) + (fine ? 4 * convWidths[p - 1] : 0) == head.columns
                    else { continue }
                    let stride = 1 << p
                    let (w, h) = (hints.width ?? 64, hints.height ?? 64)
                    guard w % stride == 0, h % stride == 0 else {
                        throw bad("the image size \(w)×\(h) is not a multiple of the detector's stride \(stride)"
                                  + " (give the image size)")
                    }
                    return DetectorConfig(height: h, width: w, channels: channels, stride: stride,
                                          encoder: encoder, convWidths: convWidths, renetWidths: renetWidths,
                                          hidden: hidden, maxBoxes: hints.boxesPerCell, skipFeatures: skip,
                                          fineFeatures: fine, classNames: (0..<classes).map(String.init),
                                          refiner: refiner)
                }
            }
        }
        throw bad("head.weight reads \(head.columns) features: not the decoder's \(hidden) with or without the cell's"
                  + " \(featureSize) and the finer map's block")
    }
}
