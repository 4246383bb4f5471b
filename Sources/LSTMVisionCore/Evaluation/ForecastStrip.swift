/// One picture of a frame forecast, as `lstmvision forecast` writes it: four rows of frames, 2-pixel mid-grey
/// gaps between them, white on black as Moving MNIST is: the given frames, the true future, the prediction, and the
/// absolute error |prediction − truth|.
public enum ForecastStrip {
    public static let gap = 2

    /// The strip of one sequence: `frames` [T, 1, rows, cols] (all of it, in [0, 1]) and `prediction`
    /// [T − context, 1, rows, cols]. Pixels in [0, 255], one channel.
    public static func image(frames: Tensor, prediction: Tensor, context: Int) -> Image {
        let (T, R, C) = (frames.shape[0], frames.shape[2], frames.shape[3]), P = T - context
        precondition(frames.rank == 4 && prediction.shape == [P, 1, R, C] && context >= 1 && P >= 1,
                     "ForecastStrip: frames \(frames.shape), prediction \(prediction.shape), context \(context)")
        let columns = max(context, P), width = columns * (C + gap) - gap, height = 4 * (R + gap) - gap
        var image = Image(width: width, height: height, channels: 1, repeating: 128)
        let plane = R * C
        func frame(_ row: Int, _ column: Int, _ value: (Int) -> Float) {
            for y in 0..<R {
                for x in 0..<C {
                    let v = max(0, min(1, value(y * C + x)))
                    image.pixels[(row * (R + gap) + y) * width + column * (C + gap) + x] = v * 255
                }
            }
        }
        for t in 0..<context { frame(0, t) { frames.scalars[t * plane + $0] } }
        for t in 0..<P {
            frame(1, t) { frames.scalars[(context + t) * plane + $0] }
            frame(2, t) { prediction.scalars[t * plane + $0] }
            frame(3, t) { abs(prediction.scalars[t * plane + $0] - frames.scalars[(context + t) * plane + $0]) }
        }
        return image
    }
}
