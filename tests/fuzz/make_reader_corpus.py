#!/usr/bin/env python3
"""Writes the seed corpora of the IDX and CSV reader fuzzers (tests/fuzz/corpus-idx, corpus-csv):
small valid files of each layout, and a few with the defects the readers must name.
Run: python3 tests/fuzz/make_reader_corpus.py tests/fuzz"""
import gzip
import os
import struct
import sys


def idx(dims, payload, dims_byte=None):
    head = bytes([0, 0, 0x08, len(dims) if dims_byte is None else dims_byte])
    return head + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


def main(root):
    idx_dir = os.path.join(root, "corpus-idx")
    csv_dir = os.path.join(root, "corpus-csv")
    os.makedirs(idx_dir, exist_ok=True)
    os.makedirs(csv_dir, exist_ok=True)
    images = idx([4, 5, 3], range(60))
    labels = idx([4], [0, 1, 2, 1])
    seeds = {
        "images.idx": images,
        "labels.idx": labels,
        "images.idx.gz": gzip.compress(images, mtime=0),
        "labels.idx.gz": gzip.compress(labels, mtime=0),
        "four-dims-magic.idx": idx([4, 5, 3], range(60), dims_byte=4),
        "huge-declared.idx": idx([60000, 60000, 60000], range(10)),
        "truncated.idx": images[:-7],
    }
    for name, data in seeds.items():
        with open(os.path.join(idx_dir, name), "wb") as f:
            f.write(data)
    csvs = {
        "header.csv": "label,x1,x2\n1,0.5,2\n0,-1,3e2\n",
        "numeric.csv": "2,1,1\n0,4,5\n1,+7,-0.25\n",
        "crlf-blank.csv": "a;b;label\r\n\r\n0.5;1;3\r\n2;4;0\r\n",
        "mixed-first-line.csv": "1,0.5,O.7\n0,1,2\n",
        "nan-ragged.csv": "0,nan,1\n1,2\n",
    }
    for name, text in csvs.items():
        with open(os.path.join(csv_dir, name), "w", newline="") as f:
            f.write(text)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
