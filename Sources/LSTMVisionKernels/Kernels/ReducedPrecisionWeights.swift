import CReducedPrecision

/// The number format of a model's weight products in inference: fp32 (exact to PyTorch, the default), bf16 weights
/// (AVX-512 BF16 dot products) or int8 weights (AVX-512 VNNI, per-row weight scales, per-row activation scales).
public enum Precision: String, CaseIterable, Codable, Sendable {
    case fp32, bf16, int8

    /// True when this CPU runs the precision's products on its own instructions (fp32: always); elsewhere the plain
    /// references compute the same values, slowly.
    public var hasInstructions: Bool {
        switch self {
        case .fp32: return true
        case .bf16: return lv_has_bf16() != 0
        case .int8: return lv_has_vnni() != 0
        }
    }
}

/// A weight matrix W [rows × columns] packed once in bf16 or int8 for products y = x·Wᵀ (the layout of `Linear` and
/// the LSTM's gate weights), `multiply` computing them through CReducedPrecision's kernels.
public struct ReducedPrecisionWeights: @unchecked Sendable {
    public let precision: Precision
    public let rows: Int, columns: Int
    let bf16: [UInt16]
    let int8: [Int8], scales: [Float], sums: [Int32]

    /// The most columns (inputs) a packed matrix may have.
    public static let maxColumns = 65536

    /// Packs `w` [rows × columns], row-major; `precision` must be bf16 or int8.
    public init(_ w: UnsafePointer<Float>, rows: Int, columns: Int, precision: Precision) {
        precondition(precision != .fp32, "ReducedPrecisionWeights: fp32 weights are not packed")
        precondition(rows > 0 && columns > 0 && columns <= Self.maxColumns && rows <= Int(Int32.max) / columns,
                     "ReducedPrecisionWeights: \(rows)×\(columns) is out of range")
        (self.precision, self.rows, self.columns) = (precision, rows, columns)
        let (m, k) = (Int32(rows), Int32(columns))
        if precision == .bf16 {
            bf16 = [UInt16](unsafeUninitializedCapacity: lv_bf16_packed_count(m, k)) { p, count in
                lv_bf16_pack(w, m, k, p.baseAddress!)
                count = lv_bf16_packed_count(m, k)
            }
            (int8, scales, sums) = ([], [], [])
        } else {
            var s = [Float](repeating: 0, count: rows), r = [Int32](repeating: 0, count: rows)
            int8 = [Int8](unsafeUninitializedCapacity: lv_int8_packed_count(m, k)) { p, count in
                lv_int8_pack(w, m, k, p.baseAddress!, &s, &r)
                count = lv_int8_packed_count(m, k)
            }
            (bf16, scales, sums) = ([], s, r)
        }
    }

    /// y[n × rows] (+)= x[n × columns]·Wᵀ, rows of x `ldx` apart and of y `ldy` apart; `reference` forces the plain
    /// C version (tests).
    public func multiply(_ x: UnsafePointer<Float>, count n: Int, ldx: Int, into y: UnsafeMutablePointer<Float>,
                         ldy: Int, accumulate: Bool, reference: Bool = false) {
        guard n > 0 else { return }
        let (m, k) = (Int32(rows), Int32(columns))
        switch precision {
        case .bf16:
            bf16.withUnsafeBufferPointer { w in
                lv_bf16_gemm(Int32(n), m, k, x, Int32(ldx), w.baseAddress!, y, Int32(ldy), accumulate ? 1 : 0,
                             reference ? 1 : 0)
            }
        case .int8:
            int8.withUnsafeBufferPointer { w in
                lv_int8_gemm(Int32(n), m, k, x, Int32(ldx), w.baseAddress!, scales, sums, y, Int32(ldy),
                             accumulate ? 1 : 0, reference ? 1 : 0)
            }
        case .fp32:
            preconditionFailure("ReducedPrecisionWeights: not packed in fp32")
        }
    }
}
