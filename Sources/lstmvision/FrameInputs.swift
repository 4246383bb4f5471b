import LSTMVision

/// What `evaluate-frames` and `forecast` read: the frame predictor and the sequences, checked against each other
/// (`context` below the frame count; frames cut into whole patches and, where `window` says so, at least that side).
func frameInputs(model: String, data: String, context: Int, limits: InputLimits,
                 window: (side: Int, name: String)? = nil) throws -> (predictor: FramePredictor, array: NPY.Array) {
    let predictor = try FramePredictorFile.load(try ModelLocator.path(model), limits: limits)
    let array = try MovingMNIST.read(data, limits: limits)
    let (T, R, C) = (array.shape[0], array.shape[2], array.shape[3])
    guard context >= 1, context < T else {
        throw CLIError("--context must be in 1..<\(T), the frames per sequence of \(data), got \(context)")
    }
    let side = window?.side ?? 1
    guard R % predictor.patch == 0, C % predictor.patch == 0, R >= side, C >= side else {
        throw CLIError("\(data): frames of \(R)×\(C) do not fit \(model) (\(predictor.patch)×\(predictor.patch)"
                       + " patches\(window.map { ", " + $0.name } ?? ""))")
    }
    return (predictor, array)
}
