import Foundation
import LSTMVision

/// Finds the models shipped under `models/` by name (`--model row-1x128`), as `MNIST.defaultDirectory` finds the
/// embedded data: `$LSTMVISION_MODELS`, then `models/` here, then `models/` beside the executable or above it.
enum ModelLocator {
    /// The folders searched, in order.
    static func folders() -> [String] {
        if let env = ProcessInfo.processInfo.environment["LSTMVISION_MODELS"] { return [env] }
        return EmbeddedFolder.candidates("models")
    }

    /// `model` itself when it names a file; else `NAME.safetensors` in the first models folder that has it.
    static func path(_ model: String) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: model) || model.contains("/") || model.hasSuffix(".safetensors") { return model }
        for folder in folders() {
            let candidate = folder + "/" + model + ".safetensors"
            if fm.fileExists(atPath: candidate) { return candidate }
        }
        let known = available().map(\.name)
        throw CLIError("\(model): no such model file, nor a model of that name in models/"
                       + (known.isEmpty ? "" : " (there: \(known.joined(separator: ", ")))"))
    }

    /// The models of the first models folder that exists: name and file, sorted by name.
    static func available() -> [(name: String, path: String)] {
        let fm = FileManager.default
        for folder in folders() {
            guard let files = try? fm.contentsOfDirectory(atPath: folder) else { continue }
            return files.filter { $0.hasSuffix(".safetensors") }.sorted()
                .map { (String($0.dropLast(".safetensors".count)), folder + "/" + $0) }
        }
        return []
    }
}
