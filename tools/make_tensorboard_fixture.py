"""Writes Tests/LSTMVisionTests/Fixtures/tensorboard/events.tfrecord with TensorBoard's own code (its event_pb2
messages and RecordWriter's TFRecord framing), which TensorBoardTests compares LSTMVision's event file with, byte
for byte. Run with tensorboard installed: python tools/make_tensorboard_fixture.py
"""
import io
import os

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LSTMVisionTests", "Fixtures", "tensorboard")


def main():
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    # The first record of every event file, then one step's scalars and one epoch's, as TensorBoardTests writes them.
    writer.write(event_pb2.Event(wall_time=1700000000.25, file_version="brain.Event:2").SerializeToString())
    step = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="step/loss", simple_value=0.6931472),
                                      summary_pb2.Summary.Value(tag="step/learning_rate", simple_value=0.002)])
    writer.write(event_pb2.Event(wall_time=1700000001.5, step=7, summary=step).SerializeToString())
    epoch = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="epoch/val_accuracy", simple_value=0.9875)])
    writer.write(event_pb2.Event(wall_time=1700000002.75, step=8, summary=epoch).SerializeToString())
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "events.tfrecord"), "wb") as f:
        f.write(buffer.getvalue())
    print(f"wrote {len(buffer.getvalue())} bytes to {os.path.normpath(OUT)}/events.tfrecord")


if __name__ == "__main__":
    main()
