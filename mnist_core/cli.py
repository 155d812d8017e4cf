"""The command line: `python -m mnist_core {train,evaluate,predict,label-issues,compare,analyze} ...`.

A user's mistake (bad flag, missing data, bad checkpoint) prints one line on
stderr and exits with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from mnist_core.errors import MnistLabError, RunError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr, not the whole usage block."""

    def error(self, message: str):  # noqa: D401 (argparse's signature)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their flags."""
    from mnist_core.config import OPTIMIZERS, PRESETS, SCHEDULES
    from mnist_core.data import DATA_DIR_ENV, SPLITS
    from mnist_core.model import DEVICES

    parser = _Parser(prog="python -m mnist_core", description="MNIST Lab: train and inspect the MNIST CNN.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data_help = f"folder holding MNIST/raw/ (default: ${DATA_DIR_ENV}, else ./data; downloaded if missing)"

    train = commands.add_parser("train", help="train MnistCNN and write a run directory")
    train.add_argument("--data-dir", help=data_help)
    train.add_argument("--preset", choices=tuple(PRESETS), default="seed", help="starting recipe (default: seed)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float, help="learning rate (the peak rate with --schedule onecycle)")
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--schedule", choices=SCHEDULES)
    train.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=None, help="random affine + stroke augmentation"
    )
    train.add_argument("--seed", type=int)
    train.add_argument("--train-subset", type=int, metavar="N", help="train on a fixed random N of the 60,000 images")
    train.add_argument("--device", choices=DEVICES)
    train.add_argument("--threads", type=int, help="CPU threads (default: one per physical core)")
    train.add_argument("--out", metavar="RUN_DIR", help="run directory to write (default: a new folder under the runs folder)")
    train.add_argument("--name", help="name for the new run folder when --out is not given")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on a split; prints JSON")
    evaluate.add_argument("--checkpoint", metavar="PATH", help="checkpoint to evaluate (default: the bundled pretrained model)")
    evaluate.add_argument("--data-dir", help=data_help)
    evaluate.add_argument("--split", choices=SPLITS, default="test")
    evaluate.set_defaults(handler=_evaluate)

    predict = commands.add_parser("predict", help="predict the digit in image files (PNG or JPEG, any size)")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files: drawn or photographed digits, either way round")
    predict.add_argument("--checkpoint", metavar="PATH", help="checkpoint to use (default: the bundled pretrained model)")
    predict.add_argument("--json", action="store_true", help="print one JSON list, one entry per image in order")
    predict.set_defaults(handler=_predict)

    issues = commands.add_parser("label-issues", help="rank a split's samples by how likely their label is wrong; prints JSON")
    issues.add_argument("--checkpoint", metavar="PATH", help="checkpoint to use (default: the bundled pretrained model)")
    issues.add_argument("--data-dir", help=data_help)
    issues.add_argument("--split", choices=SPLITS, default="test")
    issues.add_argument("--top", type=_positive_int, default=20, metavar="K", help="how many suspects to print (default: 20)")
    issues.set_defaults(handler=_label_issues)

    compare = commands.add_parser("compare", help="compare two models sample by sample on a split; prints JSON")
    for name in ("a", "b"):
        compare.add_argument(name, metavar=name.upper(), help="a checkpoint file, a run directory or 'bundled'")
    compare.add_argument("--data-dir", help=data_help)
    compare.add_argument("--split", choices=SPLITS, default="test")
    compare.set_defaults(handler=_compare)

    analyze = commands.add_parser(
        "analyze", help="probabilities, features and a 2-D map of a split, written to a folder; prints JSON"
    )
    analyze.add_argument("--checkpoint", metavar="PATH|RUN_DIR|bundled", default="bundled", help="the model (default: bundled)")
    analyze.add_argument("--data-dir", help=data_help)
    analyze.add_argument("--split", choices=SPLITS, default="test")
    analyze.add_argument("--out", metavar="DIR", required=True, help="folder for probabilities.npy, features.npy, map.npy")
    analyze.set_defaults(handler=_analyze)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def config_from_args(args: argparse.Namespace):
    """The TrainConfig the flags describe: the preset, with each given flag overriding it."""
    from mnist_core.config import TrainConfig

    overrides = {
        key: getattr(args, key)
        for key in ("epochs", "batch_size", "lr", "optimizer", "schedule", "augment", "seed", "train_subset", "device", "threads")
        if getattr(args, key) is not None
    }
    return TrainConfig.from_preset(args.preset, **overrides)


def _claim_run_dir(args: argparse.Namespace, config):
    from mnist_core.runs import Run, RunStore

    if args.out is None:
        return RunStore().create(config, args.name)
    run = Run(args.out)
    if run.progress_path.is_file() and run.progress().get("status") != "queued":
        raise RunError(f"{args.out} already holds a run ({run.status()}); choose a new --out folder.")
    try:
        run.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"Cannot create {args.out} ({exc.strerror}).") from exc
    return run


def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mnist_core.data import load_split
    from mnist_core.limits import check_config
    from mnist_core.recorder import RunRecorder
    from mnist_core.train import default_threads, train

    config = check_config(config_from_args(args))  # a hosted server's caps hold for its command line too
    run = _claim_run_dir(args, config)
    interrupted = False

    def on_signal(signum, frame):  # finish the batch, save, mark stopped
        nonlocal interrupted
        interrupted = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    print(f"run: {run.path}", flush=True)
    recorder = None
    try:
        train_split = load_split("train", args.data_dir)
        test_split = load_split("test", args.data_dir)
        recorder = RunRecorder(run, config, train_split)
        recorder.start()
        bar = None

        def on_batch(progress):
            nonlocal bar
            if bar is None or progress.batch == 1:
                if bar is not None:
                    bar.close()
                bar = tqdm(
                    total=progress.batches,
                    desc=f"epoch {progress.epoch}/{progress.epochs}",
                    unit="batch",
                    leave=False,
                    disable=None,
                )
            bar.update(1)
            bar.set_postfix(loss=f"{progress.loss:.3f}", refresh=False)
            recorder.on_batch(progress)

        def on_epoch(metrics, model):
            if bar is not None:
                bar.close()
            print(
                f"epoch {metrics.epoch}/{config.epochs}  train loss {metrics.train_loss:.4f} acc {metrics.train_acc:.4f}"
                f"  test loss {metrics.test_loss:.4f} acc {metrics.test_acc:.4f}"
                f"  {metrics.epoch_s:.1f}s  {metrics.samples_per_s:.0f} samples/s",
                flush=True,
            )
            recorder.on_epoch(metrics, model)

        result = train(
            config,
            train_split,
            test_split,
            on_batch=on_batch,
            on_epoch=on_epoch,
            should_stop=lambda: interrupted or recorder.should_stop(),
        )
        if bar is not None:
            bar.close()
        print("analysing the test split for Explore (probabilities, features, 2-D map)", flush=True)
        recorder.analyse(result.model, test_split, threads=config.threads or default_threads())
        recorder.finish(result)
    except MnistLabError as exc:
        _fail(run, recorder, config, str(exc))
        raise
    except BaseException as exc:
        _fail(run, recorder, config, f"{type(exc).__name__}: {exc}")
        raise
    print(f"{result.status}: {run.checkpoint_path}", flush=True)
    return 0


def _fail(run, recorder, config, message: str) -> None:
    from mnist_core.runs import initialize, mark_failed

    if recorder is not None:
        recorder.fail(message)
        return
    # Failed before training started (no data, say): still leave a run that says why.
    if not run.config_path.is_file():
        initialize(run, config)
    mark_failed(run, message)


def _evaluate(args: argparse.Namespace) -> int:
    from mnist_core.data import load_split
    from mnist_core.evaluate import evaluate

    checkpoint = _checkpoint_or_bundled(args.checkpoint)
    split = load_split(args.split, args.data_dir)
    result = evaluate(checkpoint.model, split.images, split.labels)
    output: dict[str, Any] = {"checkpoint": str(checkpoint.path), "sha256": checkpoint.digest, "split": args.split}
    output.update(result.summary())
    print(json.dumps(output, indent=2))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from mnist_core.preprocess import predict, preprocess

    checkpoint = _checkpoint_or_bundled(args.checkpoint)
    entries: list[dict[str, Any]] = []
    for file in args.images:
        try:
            answer = predict(checkpoint.model, preprocess(file))
        except MnistLabError as exc:  # one bad image must not stop the others
            entries.append({"file": file, "error": str(exc)})
            continue
        entries.append({"file": file, "prediction": answer.prediction, "probabilities": answer.to_dict()["probabilities"]})
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        _print_predictions(entries)
    failed = sum("error" in entry for entry in entries)
    if failed:
        print(f"error: {failed} of {len(entries)} images could not be predicted", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _label_issues(args: argparse.Namespace) -> int:
    from mnist_core.analysis import analyze
    from mnist_core.data import load_split
    from mnist_core.label_issues import find_label_issues

    checkpoint = _checkpoint_or_bundled(args.checkpoint)
    split = load_split(args.split, args.data_dir)
    result = analyze(checkpoint, split)
    issues = find_label_issues(result.probabilities, result.labels, top=args.top)
    print(json.dumps([issue.to_dict() for issue in issues], indent=2))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from mnist_core.analysis import analyze
    from mnist_core.compare import Comparison, resolve_model
    from mnist_core.data import load_split

    a, b = resolve_model(args.a), resolve_model(args.b)
    split = load_split(args.split, args.data_dir)
    comparison = Comparison(analyze(a, split), analyze(b, split))
    output = {"a": str(a.path), "b": str(b.path), "split": args.split, "n": len(split), **comparison.to_dict()}
    print(json.dumps(output, indent=2))
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from mnist_core.compare import resolve_model
    from mnist_core.data import load_split
    from mnist_core.maps import write_analysis
    from mnist_core.train import default_threads

    checkpoint = resolve_model(args.checkpoint)
    split = load_split(args.split, args.data_dir)
    try:
        summary = write_analysis(args.out, checkpoint.model, split.images, split.labels, args.split, threads=default_threads())
    except OSError as exc:
        raise RunError(f"Cannot write to {args.out} ({exc.strerror}); choose a writable --out folder.") from exc
    print(json.dumps(summary, indent=2))
    return 0


def _checkpoint_or_bundled(path: str | None):
    """The checkpoint at `path`, or the bundled model when no path is given."""
    from mnist_core.checkpoint import load_checkpoint
    from mnist_core.pretrained import load_pretrained

    return load_checkpoint(path) if path else load_pretrained()


def _print_predictions(entries: list[dict[str, Any]]) -> None:
    """A readable table: file, prediction, confidence and the runners-up (or the error)."""
    import numpy as np

    from mnist_core.preprocess import CONFIDENCE_THRESHOLD, DigitPrediction

    width = max(len("file"), *(len(entry["file"]) for entry in entries))
    print(f"{'file':<{width}}  digit  confidence  top 3")
    for entry in entries:
        if "error" in entry:
            print(f"{entry['file']:<{width}}  -      -           error: {entry['error']}")
            continue
        answer = DigitPrediction(np.array(entry["probabilities"]))
        top = ", ".join(f"{digit} {p:.1%}" for digit, p in answer.top(3))
        unsure = "" if answer.is_confident() else f"  (not sure: below {CONFIDENCE_THRESHOLD:.0%})"
        print(f"{entry['file']:<{width}}  {answer.prediction:<5}  {answer.confidence:>10.1%}  {top}{unsure}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except MnistLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
