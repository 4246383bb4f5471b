/// The kernels and the runtime are part of the library's API: `import LSTMVision` brings them.
@_exported import LSTMVisionKernels
