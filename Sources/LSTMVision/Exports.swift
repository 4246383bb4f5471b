/// The lower layers are part of the library's API: `import LSTMVision` brings them all.
@_exported import LSTMVisionCore
