#!/usr/bin/env python3
"""Reads TensorBoard event files with TensorBoard's own reader and prints what they hold as JSON:
{"file_version": str, "scalars": {tag: [[step, value], ...]}, "images": {tag: [[step, width, height, png_bytes], ...]}}.
Used by gndet's tests to check the event files gndet writes (apps/tensorboard.h). Usage: read_tfevents.py FILE..."""
import json
import sys

from tensorboard.backend.event_processing import event_file_loader


def main(paths):
    out = {"file_version": None, "scalars": {}, "images": {}, "events": 0}
    for path in paths:
        # The legacy loader yields the Event protos as stored (no conversion of simple_value to tensors);
        # its record reader checks the length and data CRCs of every record.
        for event in event_file_loader.LegacyEventFileLoader(path).Load():
            out["events"] += 1
            if event.HasField("file_version"):
                out["file_version"] = event.file_version
            for v in event.summary.value:
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    out["scalars"].setdefault(v.tag, []).append([event.step, v.simple_value])
                elif kind == "image":
                    im = v.image
                    out["images"].setdefault(v.tag, []).append(
                        [event.step, im.width, im.height, len(im.encoded_image_string),
                         im.encoded_image_string[:8].hex()])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
