import Foundation
import Yams

/// Reads YOLO-format detection data: `images/` holding the pictures (PNG, JPEG, WebP, PGM, PPM, in subfolders too)
/// and `labels/` holding, for each image, a text file of the same relative name ending in `.txt`, with one
/// `class cx cy w h` line per box (class a 0-based index; centre and size normalised to [0, 1]). The result is
/// a `COCODataset`, so the evaluator and the trainers see one format.
public enum YOLO {
    /// Image file extensions looked for, lower-case.
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "webp", "pgm", "ppm"]

    /// Reads `directory/images` and `directory/labels`; see `read(images:labels:classNames:limits:)`.
    public static func read(directory: String, classNames: [String],
                            limits: InputLimits = .default) throws -> COCODataset {
        try read(images: directory + "/images", labels: directory + "/labels", classNames: classNames, limits: limits)
    }

    /// Reads a YOLO image folder and its label folder. Images get ids 1, 2, … in file-name order and
    /// `file_name` their path relative to `images`; class `c` becomes category id `c` named `classNames[c]`;
    /// annotation ids count from 1 and each `area` is its box's. An image without a label file has no
    /// objects. Boxes reaching more than 1 px outside their image are clipped, and label files without
    /// an image are skipped, each noted in `warnings`. Files are read within `limits`.
    public static func read(images: String, labels: String, classNames: [String],
                            limits: InputLimits = .default) throws -> COCODataset {
        for folder in [images, labels] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory),
                  isDirectory.boolValue else {
                throw DataError.missing("\(folder): no such folder")
            }
        }
        let imageFiles = try files(in: images)
            .filter { imageExtensions.contains(($0 as NSString).pathExtension.lowercased()) }
        var labelFiles = Set(try files(in: labels).filter { $0.hasSuffix(".txt") })
        var dataset = COCODataset(images: [], annotations: [],
                                  categories: classNames.enumerated().map { COCODataset.Category(id: $0, name: $1) })
        var labelOwner: [String: String] = [:]
        for (k, file) in imageFiles.enumerated() {
            let size = try imageSize(images + "/" + file, limits: limits)
            let image = COCODataset.Image(id: k + 1, fileName: file, width: size.width, height: size.height)
            dataset.images.append(image)
            let labelName = (file as NSString).deletingPathExtension + ".txt"
            if let other = labelOwner.updateValue(file, forKey: labelName) {
                throw DataError.invalid("\(images): images \(other) and \(file) share the label file \(labelName)")
            }
            guard labelFiles.remove(labelName) != nil else { continue }
            for box in try readLabels(labels + "/" + labelName, image: image, classes: classNames.count,
                                      limits: limits) {
                dataset.annotations.append(COCODataset.Annotation(id: dataset.annotations.count + 1, imageID: image.id,
                                                                  categoryID: box.category, bbox: box.bbox))
            }
        }
        try dataset.validate(source: labels)
        for k in dataset.annotations.indices { dataset.annotations[k].area = dataset.annotations[k].bbox.area }
        if let orphan = labelFiles.sorted().first {
            dataset.warnings.append("\(labels): \(labelFiles.count) label"
                                    + " file\(labelFiles.count == 1 ? " has" : "s have") no image and"
                                    + " \(labelFiles.count == 1 ? "was" : "were") skipped (first: \(orphan))")
        }
        return dataset
    }

    /// Reads class names, one per line (YOLO's `classes.txt` or `obj.names`); blank lines at the end are ignored.
    public static func readClassNames(_ path: String, limits: InputLimits = .default) throws -> [String] {
        try parseClassNames(limits.readFile(path), source: path)
    }

    /// Class names from the bytes of a names file (see `readClassNames`); `source` names it in errors.
    public static func parseClassNames(_ data: Data, source path: String) throws -> [String] {
        let text = try utf8(data, source: path)
        var names = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        while names.last?.isEmpty == true { names.removeLast() }
        guard !names.isEmpty else { throw DataError.invalid("\(path): no class names") }
        if let blank = names.firstIndex(of: "") { throw DataError.invalid("\(path): line \(blank + 1) is blank") }
        return names
    }

    /// The boxes of one label file, in pixels of `image`.
    private static func readLabels(_ path: String, image: COCODataset.Image, classes: Int,
                                   limits: InputLimits) throws -> [(category: Int, bbox: Box)] {
        try parseLabels(limits.readFile(path), source: path, width: image.width, height: image.height, classes: classes)
    }

    /// The boxes of a label file's bytes (`class cx cy w h` lines), in pixels of a `width`×`height` image;
    /// `source` names the file in errors.
    public static func parseLabels(_ data: Data, source path: String, width: Int, height: Int,
                                   classes: Int) throws -> [(category: Int, bbox: Box)] {
        let text = try utf8(data, source: path)
        var boxes: [(category: Int, bbox: Box)] = []
        for (n, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            func fail(_ m: String) -> DataError { .invalid("\(path): line \(n + 1): \(m)") }
            let fields = line.split(whereSeparator: \.isWhitespace)
            if fields.isEmpty { continue }
            guard fields.count == 5 else { throw fail("expected 5 fields 'class cx cy w h', got \(fields.count)") }
            guard let c = Int(fields[0]) else { throw fail("class '\(fields[0])' is not an integer") }
            guard (0..<classes).contains(c) else { throw fail("class \(c) is outside 0..<\(classes)") }
            var v: [Double] = []
            for (name, field) in zip(["cx", "cy", "w", "h"], fields.dropFirst()) {
                guard let x = Double(field), x.isFinite else { throw fail("\(name) '\(field)' is not a finite number") }
                guard (0...1).contains(x) else { throw fail("\(name) \(x) is outside [0, 1]") }
                v.append(x)
            }
            let w = Double(width), h = Double(height)
            boxes.append((c, Box(centerX: v[0] * w, centerY: v[1] * h, width: v[2] * w, height: v[3] * h)))
        }
        return boxes
    }

    /// The bytes of a text file as a string; they must be UTF-8.
    private static func utf8(_ data: Data, source path: String) throws -> String {
        guard let text = String(data: data, encoding: .utf8) else { throw DataError.invalid("\(path): not UTF-8 text") }
        return text
    }

    /// Regular files under `folder`, as sorted relative paths.
    private static func files(in folder: String) throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: folder) else {
            throw DataError.missing("\(folder): cannot list")
        }
        var out: [String] = []
        while let path = walker.nextObject() as? String {
            if walker.fileAttributes?[.type] as? FileAttributeType == .typeRegular { out.append(path) }
        }
        return out.sorted()
    }

    /// An image's width and height from its PNG or JPEG header without decoding the pixels; other files
    /// (PGM, PPM, or headers these quick paths do not follow) are decoded by `ImageCodecs`.
    static func imageSize(_ path: String, limits: InputLimits = .default) throws -> (width: Int, height: Int) {
        let data = try limits.readFile(path)
        var quick = data.withUnsafeBytes { b in pngSize(b) ?? jpegSize(b) }
        // EXIF orientations 5-8 turn a JPEG a quarter turn: the size is that of the image as decoded (shown).
        if let q = quick, data.starts(with: [0xFF, 0xD8]), EXIF.orientation(inJPEG: [UInt8](data)) >= 5 {
            quick = (q.height, q.width)
        }
        if let quick, quick.width > 0, quick.height > 0, limits.allows(width: quick.width, height: quick.height) {
            return quick
        }
        let image = try ImageCodecs.decode([UInt8](data), source: path, limits: limits)
        return (image.width, image.height)
    }

    /// The size in a PNG's IHDR chunk, which the format requires to come first.
    private static func pngSize(_ b: UnsafeRawBufferPointer) -> (width: Int, height: Int)? {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard b.count >= 24, b.prefix(8).elementsEqual(signature),
              b[12..<16].elementsEqual("IHDR".utf8) else { return nil }
        func be32(_ o: Int) -> Int { Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]) }
        return (be32(16), be32(20))
    }

    /// The size in a JPEG's start-of-frame segment, found by walking the marker segments before it.
    private static func jpegSize(_ b: UnsafeRawBufferPointer) -> (width: Int, height: Int)? {
        guard b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 else { return nil }
        var p = 2
        while p + 1 < b.count {
            guard b[p] == 0xFF else { return nil }
            var marker = b[p + 1]
            p += 2
            while marker == 0xFF, p < b.count { marker = b[p]; p += 1 }   // fill bytes
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { continue }   // segments without a length
            if marker == 0xD9 || marker == 0xDA { return nil }               // end of image or scan before a frame
            guard p + 1 < b.count else { return nil }
            let length = Int(b[p]) << 8 | Int(b[p + 1])
            guard length >= 2 else { return nil }
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                guard p + 6 < b.count else { return nil }
                return (Int(b[p + 5]) << 8 | Int(b[p + 6]), Int(b[p + 3]) << 8 | Int(b[p + 4]))
            }
            p += length
        }
        return nil
    }
}

extension YOLO {
    /// An Ultralytics dataset file (`data.yaml`): `path`, the dataset's root (relative to the file's folder; default
    /// that folder); `train` and `val`, each an image folder or a list of them, relative to `path`; `names`, the class
    /// names as a list or an `{id: name}` map of ids 0..<n (an optional `nc` must equal their count). Each image
    /// folder's labels are in the folder of the same path with its last `images` component replaced by `labels`
    /// (`images/train` → `labels/train`), as Ultralytics looks for them. Other keys (`test`, `download`) are ignored.
    public struct DataFile: Sendable, Equatable {
        public var root: String
        public var train: [String]
        public var val: [String]
        public var names: [String]

        /// Reads and checks `path` (within `limits`): the YAML's shape, the names, and that every folder exists.
        public static func read(_ path: String, limits: InputLimits = .default) throws -> DataFile {
            let file = try parse(limits.readFile(path), source: path,
                                 base: (path as NSString).deletingLastPathComponent)
            for folder in file.train + file.val {
                for dir in [file.imageFolder(folder), try file.labelFolder(folder, source: path)] {
                    var isDirectory: ObjCBool = false
                    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory),
                          isDirectory.boolValue else {
                        throw DataError.missing("\(path): folder \(dir) (of '\(folder)') does not exist")
                    }
                }
            }
            return file
        }

        /// The settings in the bytes of a data.yaml whose folder is `base` (`source` names it in errors); the
        /// folders are not looked at.
        public static func parse(_ data: Data, source path: String, base: String) throws -> DataFile {
            let text = try utf8(data, source: path)
            func fail(_ m: String) -> DataError { .invalid("\(path): \(m)") }
            let node: Yams.Node?
            do {
                node = try Yams.compose(yaml: text)
            } catch let error as YamlError {
                throw fail("malformed YAML: " + yamlMessage(error))
            } catch {
                throw fail("malformed YAML: \(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "")
            }
            guard let top = node?.mapping else { throw fail("expected a mapping with path, train, val and names") }
            func scalar(_ key: String) throws -> String? {
                guard let v = top[key] else { return nil }
                guard let s = v.scalar?.string else { throw fail("line \(v.line): '\(key)' must be a string") }
                return s
            }
            func folders(_ key: String) throws -> [String] {
                guard let v = top[key] else { return [] }
                if let s = v.scalar?.string { return s.isEmpty ? [] : [s] }
                guard let list = v.sequence else {
                    throw fail("line \(v.line): '\(key)' must be a folder or a list of folders")
                }
                return try list.map {
                    guard let s = $0.scalar?.string else { throw fail("line \($0.line): '\(key)' lists a non-string") }
                    return s
                }
            }
            let given = try scalar("path") ?? ""
            let root = (given.hasPrefix("/") ? given
                : given.isEmpty ? base : (base as NSString).appendingPathComponent(given)) as NSString
            let train = try folders("train"), val = try folders("val")
            guard !train.isEmpty else { throw fail("no 'train' folder") }
            guard let namesNode = top["names"] else { throw fail("no 'names'") }
            let names = try classNames(namesNode, fail: fail)
            if let nc = top["nc"] {
                guard let n = nc.int, n == names.count else {
                    throw fail("line \(nc.line): nc \(nc.scalar?.string ?? "?") differs from the \(names.count) names")
                }
            }
            return DataFile(root: root.standardizingPath, train: train, val: val, names: names)
        }

        /// Class names from a list or an {id: name} map with ids 0..<n.
        static func classNames(_ node: Yams.Node, fail: (String) -> DataError) throws -> [String] {
            if let list = node.sequence {
                let names = try list.map {
                    guard let s = $0.scalar?.string, !s.isEmpty else {
                        throw fail("line \($0.line): a blank class name")
                    }
                    return s
                }
                guard !names.isEmpty else { throw fail("line \(node.line): no class names") }
                guard Set(names).count == names.count else { throw fail("line \(node.line): duplicate class names") }
                return names
            }
            guard let map = node.mapping else { throw fail("line \(node.line): 'names' must be a list or a map") }
            var byID: [Int: String] = [:]
            for (key, value) in map {
                guard let id = key.int, id >= 0 else {
                    throw fail("line \(key.line): class id '\(key.scalar?.string ?? "?")' is not an integer ≥ 0")
                }
                guard let name = value.scalar?.string, !name.isEmpty else {
                    throw fail("line \(value.line): class \(id) has no name")
                }
                byID[id] = name
            }
            guard !byID.isEmpty, byID.keys.sorted() == Array(0..<byID.count) else {
                throw fail("line \(node.line): class ids must be 0..<\(byID.count), got \(byID.keys.sorted())")
            }
            let names = (0..<byID.count).map { byID[$0]! }
            guard Set(names).count == names.count else { throw fail("line \(node.line): duplicate class names") }
            return names
        }

        /// The image folder `folder` of a split, as a path.
        public func imageFolder(_ folder: String) -> String {
            folder.hasPrefix("/") ? folder : (root as NSString).appendingPathComponent(folder)
        }

        /// The labels folder of image folder `folder`: its last `images` component replaced by `labels`.
        public func labelFolder(_ folder: String, source: String) throws -> String {
            var parts = imageFolder(folder).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard let k = parts.lastIndex(of: "images") else {
                throw DataError.invalid("\(source): image folder '\(folder)' has no 'images' component, so its"
                                        + " 'labels' folder cannot be found")
            }
            parts[k] = "labels"
            return parts.joined(separator: "/")
        }

        /// The images and boxes of the split's folders as one COCO dataset: file names relative to `root` (absolute
        /// for folders outside it), images and annotations numbered from 1 across the folders.
        public func read(split folders: [String], source: String,
                         limits: InputLimits = .default) throws -> COCODataset {
            var out = COCODataset(images: [], annotations: [],
                                  categories: names.enumerated().map { COCODataset.Category(id: $0, name: $1) })
            for folder in folders {
                let images = imageFolder(folder)
                let part = try YOLO.read(images: images, labels: try labelFolder(folder, source: source),
                                         classNames: names, limits: limits)
                let offset = out.images.count, annotationOffset = out.annotations.count
                for image in part.images {
                    out.images.append(.init(id: image.id + offset,
                                            fileName: (folder as NSString).appendingPathComponent(image.fileName),
                                            width: image.width, height: image.height))
                }
                for a in part.annotations {
                    out.annotations.append(.init(id: a.id + annotationOffset, imageID: a.imageID + offset,
                                                 categoryID: a.categoryID, bbox: a.bbox, area: a.area))
                }
                out.warnings += part.warnings
            }
            return out
        }
    }

    /// A Yams error as one line.
    static func yamlMessage(_ error: YamlError) -> String {
        String(describing: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "unreadable"
    }
}

extension Yams.Node {
    /// The node's line in its YAML text (1-based), for errors.
    fileprivate var line: String { mark.map { String($0.line) } ?? "?" }
}
