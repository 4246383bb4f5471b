/// An array of `count` floats whose contents the caller overwrites entirely (skips zero-filling).
/// An empty one is a plain `[]`: the initializer would write the count into the runtime's shared
/// empty-array storage, which ThreadSanitizer reports as a race with every other thread reading it.
@inlinable @inline(__always)
package func uninitializedFloats(_ count: Int) -> [Float] {
    count == 0 ? [] : [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
}
