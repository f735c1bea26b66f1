"""Tutorial: serve a fine-tuned checkpoint with -tuned_model_dir and -ckpt_name.

A real fine-tuning run (e.g. Google's run_classifier.py on MRPC) leaves a folder such as
/tmp/mrpc_output/ with model.ckpt-343.*: the BERT weights it changed, plus optimizer slots,
a task head and global_step. To stay self-contained and quick, this script writes such a
folder itself, in Google's TF1 layout, from the pretrained weights nudged by a little noise
(a stand-in for training), then serves it over the pretrained model:

    bert-serving-start -model_dir PRETRAINED -tuned_model_dir OUT -ckpt_name model.ckpt-343

and compares its vectors with those of the pretrained model. With `--port/--port_out` the
pretrained vectors come from that running server (started on the same model, default
settings); otherwise a second server is started for them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from helpers import example_parser, server_for, start_server

SENTENCES = ["First do it", "then do it right", "then do it better"]
CKPT_NAME = "model.ckpt-343"
NOISE = 0.05  # relative size of the perturbation that stands in for fine-tuning


def pretrained_dir(model_dir: str | None) -> Path:
    """The pretrained model's folder (the embedded MiniLM unless --model_dir)."""
    if model_dir is not None:
        return Path(model_dir)
    from bert_serving.server.default_model import default_model_dir

    return default_model_dir()


def write_finetuned_checkpoint(model_dir: Path, out_dir: Path, seed: int = 343) -> Path:
    """Write OUT/model.ckpt-343.* as a TF1 fine-tuning run would, from perturbed weights."""
    import tensorflow as tf

    from bert_serving.server.model import inspect_model, load_weights

    weights = load_weights(inspect_model(model_dir))
    rng = np.random.default_rng(seed)
    tuned = {
        name: (array + rng.normal(0.0, NOISE * (array.std() + 1e-6), array.shape)).astype(
            np.float32
        )
        for name, array in weights.items()
    }
    hidden = weights["bert/embeddings/word_embeddings"].shape[1]
    first_kernel = "bert/encoder/layer_0/attention/self/query/kernel"
    # what else a fine-tuning run saves; the server ignores all of it
    extras = {
        "global_step": np.array(343, np.int64),
        "output_weights": rng.normal(0, 0.02, (2, hidden)).astype(np.float32),
        "output_bias": np.zeros(2, np.float32),
        f"{first_kernel}/adam_m": np.zeros_like(tuned[first_kernel]),
        f"{first_kernel}/adam_v": np.zeros_like(tuned[first_kernel]),
    }
    variables = {**tuned, **extras}
    names = sorted(variables)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / CKPT_NAME
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[name]) for name in names],
    )
    (out_dir / "checkpoint").write_text(f'model_checkpoint_path: "{CKPT_NAME}"\n')
    return prefix


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main(argv: list[str] | None = None) -> int:
    parser = example_parser(__doc__.splitlines()[0])
    options = parser.parse_args(argv)
    model_dir = pretrained_dir(options.model_dir)

    with tempfile.TemporaryDirectory(prefix="mrpc_output-") as out:
        prefix = write_finetuned_checkpoint(model_dir, Path(out))
        files = sorted(path.name for path in Path(out).iterdir())
        print(f"fine-tuned checkpoint written: {prefix}")
        print(f"  files: {', '.join(files)}")

        tuned_args = ("-tuned_model_dir", out, "-ckpt_name", CKPT_NAME)
        with start_server(str(model_dir), *tuned_args) as tuned, tuned.client() as bc:
            config = bc.server_config
            print(f"serving model_dir={config['model_dir']}")
            print(f"  tuned_model_dir={config['tuned_model_dir']}")
            print(f"  ckpt_name={config['ckpt_name']}")
            tuned = bc.encode(SENTENCES)

    options.model_dir = str(model_dir)
    with server_for(options) as base_server, base_server.client() as bc:
        pretrained = bc.encode(SENTENCES)

    print("cosine(pretrained, fine-tuned) per sentence:")
    for sentence, cosine in zip(SENTENCES, cosine_rows(pretrained, tuned)):
        print(f"  {sentence!r:>22}: {cosine:.4f}")
    changed = not np.allclose(pretrained, tuned, atol=1e-4)
    print(f"the fine-tuned weights {'changed' if changed else 'did NOT change'} the vectors")
    return 0 if changed else 1


if __name__ == "__main__":
    sys.exit(main())
