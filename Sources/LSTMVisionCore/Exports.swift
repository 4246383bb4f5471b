/// The kernels and the runtime are part of the library's API: `import LSTMVision` brings them.
@_exported import LSTMVisionKernels
/// The generated ONNX and TensorBoard types (`Onnx_ModelProto`, ...) that `ONNXExport` returns.
@_exported import LSTMVisionProtos
