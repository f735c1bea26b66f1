"""Converted OpenVINO models kept on disk, so that a worker starts without TensorFlow.

An OpenVINO worker imported TensorFlow (about 6 s of CPU), read the checkpoint, built and
traced the graph and converted it at every start: every worker of a server, every
replacement of a crashed one, every start of a remote worker. What that produces depends
only on the model's files and vector settings (the fingerprint the front already compares,
model/fingerprint.py), the precision, and the code and versions that made it. So the first
worker saves the converted model together with its start-up probe (a batch and
TensorFlow's vectors for it, openvino_forward.Probe); the next one reads both, compiles,
and must reproduce those vectors before it serves, as a converting worker must. It never
loads TensorFlow or reads the checkpoint.

What keeps it exact:

- an entry is named by a hash of everything it depends on: the fingerprint (the digests of
  the config, vocabulary and weight files, and every setting that changes vectors), the
  precision, the versions of OpenVINO and TensorFlow, and the source of this package's
  model code. Another model, setting or release finds no entry and converts;
- weights are saved as they are: ``compress_to_fp16=False`` (OpenVINO's default rounds
  them to float16, which would give other vectors);
- an entry is written in a folder of its own and renamed into place whole, so a worker
  starting at the same moment finds all of it or nothing (of two workers converting at
  once, the first to finish puts its entry in place); one that cannot be read is
  discarded, and one whose model does not reproduce its probe is never served: the worker
  converts, and replaces the entry if its own conversion passes (if that fails too, the
  runtime on this CPU is at fault, and the entry stays for those where it passes);
- a cache folder that cannot be written is skipped: each worker converts, as before.

Size on disk: the model's weights once per precision and vector settings (float32: MiniLM
80 MB, BERT-base about 440 MB; int8 less, its dense layers a quarter: MiniLM 55 MB, most of
it the float32 embeddings). Deleting the folder (cache_folder.py) only makes the next start
convert again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from ..cache_folder import cache_folder
from .openvino_forward import Probe, process_core

FORMAT = "1"  # how an entry is laid out; a new layout gets new names
MODEL_FILE = "model.xml"  # OpenVINO writes the weights beside it, as model.bin
PROBE_FILE = "probe.npz"
INPUT_NAMES = ("input_ids", "input_mask", "segment_ids", "lengths")
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly")


class ForwardCache:
    """The saved OpenVINO models of one model and its vector settings (``identity``: the
    worker's fingerprint, as JSON), one per precision, in ``folder``/openvino."""

    def __init__(self, identity: str, folder: Path | None = None):
        if not identity:  # every model would share one entry: another model's vectors
            raise ValueError("a forward cache needs the model's fingerprint")
        self.identity = identity
        self.folder = (folder or cache_folder()) / "openvino"

    def entry(self, precision: str) -> Path:
        """The entry's folder, named by everything the converted model depends on."""
        parts = (FORMAT, self.identity, precision, *_versions(), _model_code_digest())
        return self.folder / hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]

    def load(self, precision: str) -> tuple[object, Probe] | None:
        """The saved ``openvino.Model`` and its probe, or None when there is no entry; an
        entry that cannot be read (damaged on disk) is discarded."""
        entry = self.entry(precision)
        if not entry.exists():
            return None
        try:
            with np.load(entry / PROBE_FILE) as stored:
                probe = Probe(tuple(stored[name] for name in INPUT_NAMES), stored["expected"])
            model = process_core().read_model(entry / MODEL_FILE)
        except (OSError, ValueError, KeyError, RuntimeError):
            self.discard(precision)
            return None
        return model, probe

    def discard(self, precision: str) -> None:
        """Remove the entry (found unreadable, or replaced by one that passed its check where
        it failed), first moving it aside so that no worker reads it half removed."""
        entry = self.entry(precision)
        try:
            aside = Path(tempfile.mkdtemp(dir=self.folder, prefix=".discarded-"))
        except OSError:
            return  # a read-only cache keeps it: each start checks it and converts
        with contextlib.suppress(OSError):  # another worker moved it first
            os.rename(entry, aside / entry.name)
        shutil.rmtree(aside, ignore_errors=True)

    def save(self, precision: str, model, probe: Probe, replace: bool = False) -> bool:
        """Write the entry; whether this call put it in place. Skipped where the folder
        cannot be written; if another worker's entry got there first, that one stays,
        unless ``replace`` (the one there failed its check where this one passed)."""
        import openvino as ov

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=self.folder, prefix=".staging-"))
        except OSError:
            return False  # not writable here: every worker converts its own, as before
        try:
            ov.save_model(model, staging / MODEL_FILE, compress_to_fp16=False)
            np.savez(
                staging / PROBE_FILE,
                expected=probe.expected,
                **dict(zip(INPUT_NAMES, probe.inputs)),
            )
            for path in staging.iterdir():  # no secret: other users of the folder may read
                path.chmod(0o644)
            staging.chmod(0o755)
            if replace:
                self.discard(precision)
            os.rename(staging, self.entry(precision))  # ENOTEMPTY if one is there already
        except (OSError, RuntimeError):
            return False  # a full disk, say: the worker serves from the model it converted
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True


@lru_cache(maxsize=1)
def _versions() -> tuple[str, str]:
    """OpenVINO's and TensorFlow's versions, read without importing TensorFlow."""
    import openvino

    return openvino.__version__, _tensorflow_version()


def _tensorflow_version() -> str:
    for name in TENSORFLOW_DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return f"{name} {metadata.version(name)}"
    providers = metadata.packages_distributions().get("tensorflow", [])
    return " ".join(f"{name} {metadata.version(name)}" for name in providers) or "none"


@lru_cache(maxsize=1)
def _model_code_digest() -> str:
    """A digest of this package's source: the graph, its conversion and its pooling."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
