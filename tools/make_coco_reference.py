#!/usr/bin/env python3
"""Generate pycocotools reference cases for LSTMVision's COCO detection evaluator.

Each case is three small JSON files under ``Tests/LSTMVisionTests/Fixtures/coco/``:

* ``<case>.gt.json``        -- COCO instance annotations (images, annotations, categories)
* ``<case>.dets.json``      -- COCO results: a list of {image_id, category_id, bbox, score}
* ``<case>.expected.json``  -- ``stats``: the 12 numbers of ``COCOeval(..., 'bbox').stats`` in order, and
                               ``perClassAP``: per category name, the mean of the entries > -1 of
                               ``eval['precision'][:, :, k, 0, 2]`` (AP@[.5:.95], all areas, 100 dets), or -1

The boxes are random but seeded (three categories, every area range, values rounded to 0.1 px and
scores to 0.01 so that ties occur), plus edge cases: no detections at all, duplicate detections of one
object, a category with detections but no ground truth, one with ground truth but no detections, an
image without annotations, crowd regions, boxes on the area-range boundaries, matching subtleties
(equal IoUs, a regular object beside a crowd region, IoUs exactly at a threshold), and more than 100
detections in an image. The files are byte-for-byte reproducible.

Usage::

    python3 tools/make_coco_reference.py [--out DIR]
"""

import argparse
import contextlib
import io
import json
import os
import random

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

DEFAULT_OUT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LSTMVisionTests", "Fixtures", "coco")
)
CATEGORIES = [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}, {"id": 5, "name": "triangle"}]


# --------------------------------------------------------------------------- helpers


def _r(x, digits=1):
    return round(float(x), digits)


def _random_box(rng, width, height):
    """A box inside the image whose side is drawn so that every area range occurs."""
    side = rng.choice([rng.uniform(4, 30), rng.uniform(33, 90), rng.uniform(100, 180)])
    w = _r(min(side * rng.uniform(0.6, 1.4), width - 1))
    h = _r(min(side * rng.uniform(0.6, 1.4), height - 1))
    x = _r(rng.uniform(0, width - w))
    y = _r(rng.uniform(0, height - h))
    return [x, y, w, h]


def _jitter(rng, box, amount):
    """A detection near a ground-truth box: corners moved by up to `amount` of the box size."""
    x, y, w, h = box
    dx, dy = rng.uniform(-amount, amount) * w, rng.uniform(-amount, amount) * h
    dw, dh = rng.uniform(-amount, amount) * w, rng.uniform(-amount, amount) * h
    return [_r(x + dx), _r(y + dy), _r(max(w + dw, 1)), _r(max(h + dh, 1))]


def _images(n, rng):
    return [{"id": 10 + 3 * i, "file_name": f"img{i}.png", "width": rng.choice([200, 256, 320]),
             "height": rng.choice([180, 240, 256])} for i in range(n)]


def _annotation(ann_id, image_id, category_id, box, area=None, iscrowd=0):
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "bbox": box,
            "area": _r(box[2] * box[3], 2) if area is None else area, "iscrowd": iscrowd}


def _random_case(seed, n_images=5, per_image=(0, 6), false_positives=(0, 4), categories=(1, 2, 5)):
    """Random ground truth and detections: most objects found with a jittered box, some missed, some
    false positives, scores rounded to 0.01."""
    rng = random.Random(seed)
    images = _images(n_images, rng)
    anns, dets = [], []
    for img in images:
        for _ in range(rng.randint(*per_image)):
            cat = rng.choice(categories)
            box = _random_box(rng, img["width"], img["height"])
            anns.append(_annotation(len(anns) + 1, img["id"], cat, box))
            if rng.random() < 0.8:
                dets.append({"image_id": img["id"], "category_id": cat, "bbox": _jitter(rng, box, rng.choice([0.05, 0.15, 0.3])),
                             "score": _r(rng.random(), 2)})
        for _ in range(rng.randint(*false_positives)):
            dets.append({"image_id": img["id"], "category_id": rng.choice(categories),
                         "bbox": _random_box(rng, img["width"], img["height"]), "score": _r(rng.random(), 2)})
    rng.shuffle(dets)
    return {"images": images, "annotations": anns, "categories": CATEGORIES}, dets


# --------------------------------------------------------------------------- cases


def case_random(seed):
    return _random_case(seed)


def case_no_detections():
    gt, _ = _random_case(11)
    return gt, []


def case_duplicates():
    """Every object detected two or three times with the same or nearly the same box."""
    gt, _ = _random_case(12, false_positives=(0, 0))
    rng = random.Random(112)
    dets = []
    for a in gt["annotations"]:
        for k in range(rng.randint(2, 3)):
            box = list(a["bbox"]) if k == 0 else _jitter(rng, a["bbox"], 0.05)
            dets.append({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": box,
                         "score": rng.choice([0.9, 0.9, 0.5, _r(rng.random(), 2)])})
    return gt, dets


def case_category_without_ground_truth():
    """Category 5 has detections but no ground truth (its AP is -1); category 1 has no detections."""
    gt, dets = _random_case(13, categories=(1, 2))
    rng = random.Random(113)
    dets = [d for d in dets if d["category_id"] != 1]
    for img in gt["images"]:
        dets.append({"image_id": img["id"], "category_id": 5, "bbox": _random_box(rng, img["width"], img["height"]),
                     "score": _r(rng.random(), 2)})
    return gt, dets


def case_empty_image():
    """Two images without annotations, one of them with (false) detections."""
    gt, dets = _random_case(14, n_images=4)
    rng = random.Random(114)
    empty = [{"id": 100, "file_name": "empty0.png", "width": 320, "height": 240},
             {"id": 101, "file_name": "empty1.png", "width": 320, "height": 240}]
    gt["images"] = empty[:1] + gt["images"] + empty[1:]
    for _ in range(3):
        dets.append({"image_id": 100, "category_id": rng.choice([1, 2, 5]), "bbox": _random_box(rng, 320, 240),
                     "score": _r(rng.random(), 2)})
    return gt, dets


def case_crowd():
    """Crowd regions: detections inside them are ignored, several may match one."""
    gt, dets = _random_case(15, n_images=3)
    rng = random.Random(115)
    for img in gt["images"]:
        box = [20.0, 20.0, 150.0, 120.0]
        gt["annotations"].append(_annotation(len(gt["annotations"]) + 1, img["id"], 2, box, iscrowd=1))
        for _ in range(3):
            inner = [_r(rng.uniform(20, 100)), _r(rng.uniform(20, 80)), _r(rng.uniform(10, 50)), _r(rng.uniform(10, 40))]
            dets.append({"image_id": img["id"], "category_id": 2, "bbox": inner, "score": _r(rng.random(), 2)})
    return gt, dets


def case_area_boundaries():
    """Ground truth exactly on the area-range bounds (32² and 96², counted in both neighbours), an `area`
    field unlike the box's, detections of boundary sizes, and equal scores across images."""
    images = [{"id": 1, "file_name": "a.png", "width": 300, "height": 300},
              {"id": 2, "file_name": "b.png", "width": 300, "height": 300}]
    anns = [
        _annotation(1, 1, 1, [10.0, 10.0, 32.0, 32.0]),                 # area 1024: small and medium
        _annotation(2, 1, 2, [100.0, 100.0, 96.0, 96.0]),               # area 9216: medium and large
        _annotation(3, 2, 1, [50.0, 50.0, 120.0, 100.0], area=900.0),   # big box, small area field
        _annotation(4, 2, 5, [0.0, 0.0, 20.0, 20.0]),
        _annotation(5, 2, 5, [200.0, 200.0, 40.0, 40.0]),
    ]
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [11.0, 10.0, 32.0, 32.0], "score": 0.8},
        {"image_id": 1, "category_id": 2, "bbox": [100.0, 104.0, 96.0, 96.0], "score": 0.8},
        {"image_id": 2, "category_id": 1, "bbox": [52.0, 50.0, 120.0, 100.0], "score": 0.8},
        {"image_id": 2, "category_id": 1, "bbox": [0.0, 150.0, 32.0, 32.0], "score": 0.8},
        {"image_id": 2, "category_id": 5, "bbox": [1.0, 1.0, 20.0, 20.0], "score": 0.7},
        {"image_id": 2, "category_id": 5, "bbox": [200.0, 200.0, 40.0, 40.0], "score": 0.7},
        {"image_id": 2, "category_id": 5, "bbox": [205.0, 205.0, 40.0, 40.0], "score": 0.7},
        {"image_id": 1, "category_id": 5, "bbox": [150.0, 10.0, 96.0, 96.0], "score": 0.7},
    ]
    return {"images": images, "annotations": anns, "categories": CATEGORIES}, dets


def case_matching_rules():
    """Hand-made matching subtleties: a detection with exactly equal IoU to two objects (pycocotools takes the
    later one, which lets the next detection match the other), a detection that overlaps a regular object
    and lies inside a crowd region (the regular match wins: ignored objects come last and stop the search),
    a detection matching a crowd region only (ignored, not a false positive), and IoUs of exactly 0.5 and
    0.75 (a match at that threshold)."""
    images = [{"id": 1, "file_name": "a.png", "width": 200, "height": 200},
              {"id": 2, "file_name": "b.png", "width": 200, "height": 200},
              {"id": 3, "file_name": "c.png", "width": 200, "height": 200}]
    anns = [
        _annotation(1, 1, 1, [0.0, 0.0, 10.0, 10.0]),
        _annotation(2, 1, 1, [2.0, 0.0, 10.0, 10.0]),
        _annotation(3, 2, 2, [100.0, 100.0, 60.0, 60.0], iscrowd=1),
        _annotation(4, 2, 2, [104.0, 100.0, 40.0, 40.0]),
        _annotation(5, 3, 5, [0.0, 0.0, 10.0, 20.0]),
        _annotation(6, 3, 5, [100.0, 0.0, 40.0, 10.0]),
    ]
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [1.0, 0.0, 10.0, 10.0], "score": 0.9},   # IoU 9/11 with both
        {"image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 10.0, 10.0], "score": 0.8},   # IoU 1 and 2/3
        {"image_id": 2, "category_id": 2, "bbox": [100.0, 100.0, 40.0, 40.0], "score": 0.9},  # IoU 0.82; inside the crowd
        {"image_id": 2, "category_id": 2, "bbox": [110.0, 145.0, 10.0, 10.0], "score": 0.85},  # only in the crowd
        {"image_id": 2, "category_id": 2, "bbox": [0.0, 0.0, 30.0, 30.0], "score": 0.6},
        {"image_id": 3, "category_id": 5, "bbox": [0.0, 0.0, 10.0, 10.0], "score": 0.7},   # IoU exactly 0.5
        {"image_id": 3, "category_id": 5, "bbox": [100.0, 0.0, 30.0, 10.0], "score": 0.7},  # IoU exactly 0.75
    ]
    return {"images": images, "annotations": anns, "categories": CATEGORIES}, dets


def case_many_detections():
    """More than 100 detections in one image and more than 10 in others (maxDets 1, 10, 100 all bind)."""
    gt, dets = _random_case(16, n_images=3, per_image=(8, 14), false_positives=(5, 12))
    rng = random.Random(116)
    img = gt["images"][0]
    for _ in range(110):
        dets.append({"image_id": img["id"], "category_id": rng.choice([1, 2, 5]),
                     "bbox": _random_box(rng, img["width"], img["height"]), "score": _r(rng.random() * 0.5, 2)})
    return gt, dets


CASES = {
    "random1": lambda: case_random(1),
    "random2": lambda: case_random(2),
    "random3": lambda: case_random(3),
    "no_detections": case_no_detections,
    "duplicates": case_duplicates,
    "category_without_ground_truth": case_category_without_ground_truth,
    "empty_image": case_empty_image,
    "crowd": case_crowd,
    "area_boundaries": case_area_boundaries,
    "matching_rules": case_matching_rules,
    "many_detections": case_many_detections,
}


# --------------------------------------------------------------------------- evaluation


def evaluate(gt, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(gt))
        coco_gt.createIndex()
        if dets:
            coco_dt = coco_gt.loadRes(json.loads(json.dumps(dets)))
        else:   # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            coco_dt.createIndex()
        e = COCOeval(coco_gt, coco_dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    precision = e.eval["precision"]
    per_class = {}
    for k, cat_id in enumerate(e.params.catIds):
        p = precision[:, :, k, 0, 2]
        per_class[coco_gt.cats[cat_id]["name"]] = float(np.mean(p[p > -1])) if (p > -1).any() else -1.0
    return {"stats": [float(s) for s in e.stats], "perClassAP": per_class}


def _write(path, value):
    with open(path, "w") as f:
        json.dump(value, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: the test fixtures)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, make in CASES.items():
        gt, dets = make()
        _write(os.path.join(args.out, f"{name}.gt.json"), gt)
        _write(os.path.join(args.out, f"{name}.dets.json"), dets)
        _write(os.path.join(args.out, f"{name}.expected.json"), evaluate(gt, dets))
        print(f"{name}: {len(gt['images'])} images, {len(gt['annotations'])} objects, {len(dets)} detections")


if __name__ == "__main__":
    main()
