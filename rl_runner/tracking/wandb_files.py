"""W&B's own record of a run, read back: the `run-<id>.wandb` file in each of its
session folders (`<run dir>/wandb/offline-run-*` or `run-*`). It is a LevelDB-style
log of 32 KiB blocks, each record a protobuf `Record`; a killed session's file ends
part-way through a block, and reading stops there.

A resumed offline run asks these files which steps W&B already holds (a kill loses
what W&B had not yet written), and the tests read their history back.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAGIC = b":W&B"
FILE_HEADER = 7  # ":W&B", a 2-byte magic number, a version byte
BLOCK = 32 * 1024
RECORD_HEADER = struct.Struct("<IHB")  # crc32, length, kind
WHOLE, FIRST, LAST = 1, 2, 4  # the kinds that start (WHOLE, FIRST) and end (WHOLE, LAST) one


def session_files(run_dir: Path, run_id: str) -> list[Path]:
    """The run's session files, oldest first (a resume adds one per session)."""
    return sorted((run_dir / "wandb").glob(f"*run-*-{run_id}/run-{run_id}.wandb"))


def records(path: Path) -> Iterator[Any]:
    """The protobuf records of one session file, up to where it ends."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if not data.startswith(MAGIC):
        return
    position, parts = FILE_HEADER, b""
    while True:
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < RECORD_HEADER.size:  # the block's tail is padding
            position += left_in_block
            continue
        if position + RECORD_HEADER.size > len(data):
            return
        _, length, kind = RECORD_HEADER.unpack_from(data, position)
        start = position + RECORD_HEADER.size
        if kind == 0 or start + length > len(data):  # unwritten, or cut off by a kill
            return
        piece = data[start : start + length]
        parts = piece if kind in (WHOLE, FIRST) else parts + piece
        position = start + length
        if kind in (WHOLE, LAST):
            record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
            record.ParseFromString(parts)
            yield record


def history(path: Path) -> Iterator[dict[str, Any]]:
    """The history rows of one session file: {key: value}, W&B's `_step` among them."""
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            yield {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }


def last_step(run_dir: Path, run_id: str) -> int:
    """The newest step the run's session files hold (-1 for none)."""
    steps = [row["_step"] for path in session_files(run_dir, run_id) for row in history(path)]
    return max(steps, default=-1)
