"""The command line: `mnist-lab COMMAND ...` (the same as `python -m mnist_core`); `mnist-lab --help` lists the commands.

A user's mistake (bad flag, missing data, bad checkpoint) prints one line on
stderr and exits with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from mnist_core.errors import MnistLabError, RunError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr, not the whole usage block."""

    def error(self, message: str):  # noqa: D401 (argparse's signature)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their flags."""
    from mnist_core import __version__
    from mnist_core.config import CLEANINGS, DEVICES, OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULES
    from mnist_core.data import DATA_DIR_ENV, SPLITS

    parser = _Parser(prog="mnist-lab", description="MNIST Lab: train and inspect the MNIST CNN.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    train.add_argument(
        "--label-smoothing",
        type=float,
        metavar="EPS",
        help="spread EPS of each target over all ten digits (the preset's: 0 for seed, 0.1 for fast)",
    )
    train.add_argument("--seed", type=int)
    train.add_argument("--train-subset", type=int, metavar="N", help="train on a fixed random N of the 60,000 images")
    train.add_argument("--device", choices=DEVICES)
    train.add_argument("--threads", type=int, help="CPU threads (default: one per physical core)")
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="fp32, bf16 autocast, or auto: bf16 where measured faster (the preset's: fp32 for seed, auto for fast)",
    )
    train.add_argument("--out", metavar="RUN_DIR", help="run directory to write (default: a new folder under the runs folder)")
    train.add_argument("--name", help="name for the new run folder when --out is not given")
    train.add_argument("--audit", metavar="AUDIT_ID", help="the label audit whose verdicts --clean applies (recorded)")
    train.add_argument("--clean", choices=CLEANINGS, help="leave out (drop) or relabel the training samples listed")
    train.add_argument("--changed-indices", type=_int_list, metavar="I,J,...", help="training indices to drop or relabel")
    train.add_argument("--changed-labels", type=_int_list, metavar="L,M,...", help="their new labels (with --clean relabel)")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on a split; prints JSON")
    evaluate.add_argument("--checkpoint", metavar="PATH", help="checkpoint to evaluate (default: the bundled pretrained model)")
    evaluate.add_argument("--data-dir", help=data_help)
    evaluate.add_argument("--split", choices=SPLITS, default="test")
    evaluate.add_argument(
        "--predictions", metavar="FILE.csv", help="also write one row per image: index, label, prediction, confidence, p0..p9"
    )
    evaluate.set_defaults(handler=_evaluate)

    runs = commands.add_parser("runs", help="list the runs in the run store (default: $MNIST_LAB_RUNS_DIR, else ./runs)")
    runs.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    runs.set_defaults(handler=_runs)

    export = commands.add_parser("export", help="export a checkpoint's model to ONNX")
    export.add_argument("--checkpoint", metavar="PATH", help="checkpoint to export (default: the bundled pretrained model)")
    export.add_argument("--onnx", metavar="FILE", required=True, help="the .onnx file to write")
    export.set_defaults(handler=_export)

    predict = commands.add_parser("predict", help="predict the digit in image files (PNG or JPEG, any size)")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files: drawn or photographed digits, either way round")
    predict.add_argument("--checkpoint", metavar="PATH", help="checkpoint to use (default: the bundled pretrained model)")
    predict.add_argument("--json", action="store_true", help="print one JSON list, one entry per image in order")
    predict.set_defaults(handler=_predict)

    audit = commands.add_parser("audit", help="cross-validated label audit of the training set; writes a run directory")
    audit.add_argument("--data-dir", help=data_help)
    audit.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds (default: 5)")
    audit.add_argument("--preset", choices=tuple(PRESETS), default="fast", help="recipe of each fold model (default: fast)")
    audit.add_argument("--epochs", type=int, metavar="N", help="epochs per fold model (default: the preset's)")
    audit.add_argument("--seed", type=int, metavar="S", help="seed of the folds and of fold 1's model (default: 0)")
    audit.add_argument("--train-subset", type=int, metavar="N", help="audit a fixed random N of the 60,000 images")
    audit.add_argument("--out", metavar="RUN_DIR", help="run directory to write (default: a new folder under the runs folder)")
    audit.set_defaults(handler=_audit)

    issues = commands.add_parser("label-issues", help="rank a split's samples by how likely their label is wrong; prints JSON")
    source = issues.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", metavar="PATH", help="checkpoint to use (default: the bundled pretrained model)")
    source.add_argument("--audit", metavar="RUN_DIR", help="rank with a finished label audit's out-of-sample probabilities")
    source.add_argument("--runs", nargs="+", metavar="RUN_DIR", help="rank with the mean probabilities of finished runs")
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
    robustness = commands.add_parser(
        "robustness", help="test accuracy under rotation, shift, scale, noise, blur, thickness, occlusion"
    )
    robustness.add_argument("--checkpoint", metavar="PATH", help="checkpoint to use (default: the bundled pretrained model)")
    robustness.add_argument("--data-dir", help=data_help)
    robustness.add_argument(
        "--json", action="store_true", help='print {"clean": a, "corruptions": {kind: [{"severity": s, "accuracy": a}]}}'
    )
    robustness.set_defaults(handler=_robustness)

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


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def config_from_args(args: argparse.Namespace):
    """The TrainConfig the flags describe: the preset, with each given flag overriding it."""
    from mnist_core.config import TrainConfig

    overrides = {
        key: getattr(args, key)
        for key in ("epochs", "batch_size", "lr", "optimizer", "schedule", "augment", "label_smoothing", "seed", "train_subset")
        + ("device", "threads", "precision")
        + ("audit", "clean", "changed_indices", "changed_labels")
        if getattr(args, key, None) is not None
    }
    return TrainConfig.from_preset(args.preset, **overrides)


def _stop_on_signals():
    """SIGTERM and Ctrl+C ask a run to stop after its current batch (it saves and is marked stopped); returns the flag."""
    received: list[int] = []

    def on_signal(signum, frame):
        received.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return lambda: bool(received)


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
    from mnist_core.cleaning import cleaned_split
    from mnist_core.data import load_split
    from mnist_core.limits import check_config
    from mnist_core.precision import resolved
    from mnist_core.recorder import RunRecorder
    from mnist_core.train import default_threads, train

    config = check_config(config_from_args(args))  # a hosted server's caps hold for its command line too
    config = resolved(config, config.threads or default_threads())  # config.json records fp32 or bf16, not auto
    run = _claim_run_dir(args, config)
    interrupted = _stop_on_signals()

    print(f"run: {run.path}", flush=True)
    recorder = None
    try:
        train_split = cleaned_split(load_split("train", args.data_dir), config)
        test_split = load_split("test", args.data_dir)
        recorder = RunRecorder(run, config, train_split)
        recorder.start()
        bar = _EpochBar()

        def on_batch(progress):
            bar.show(progress, f"epoch {progress.epoch}/{progress.epochs}")
            recorder.on_batch(progress)

        def on_epoch(metrics, model):
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
            should_stop=lambda: interrupted() or recorder.should_stop(),
        )
        bar.close()
        print(
            "analysing for Explore: the test split (probabilities, features, 2-D map), the training split's features", flush=True
        )
        recorder.keep_final(result)
        bank = load_split("train", args.data_dir)  # as Explore loads it (`train_split` may carry cleaned labels)
        recorder.analyse(result.model, test_split, bank, threads=config.threads or default_threads())
        recorder.finish(result)
    except BaseException as exc:
        _fail(run, recorder, config, exc)
        raise
    print(f"{result.status}: {run.checkpoint_path}", flush=True)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from mnist_core.audit import AuditConfig, run_audit
    from mnist_core.audit_run import AuditRecorder
    from mnist_core.config import TrainConfig
    from mnist_core.data import load_split
    from mnist_core.limits import check_config

    overrides = {key: getattr(args, key) for key in ("epochs", "seed", "train_subset") if getattr(args, key) is not None}
    config = AuditConfig(TrainConfig.from_preset(args.preset, **overrides), args.folds)
    check_config(config.train)  # a hosted server's caps hold for each fold model
    args.name = "audit"
    run = _claim_run_dir(args, config)
    interrupted = _stop_on_signals()

    print(f"run: {run.path}", flush=True)
    recorder = None
    try:
        train_split = load_split("train", args.data_dir)
        test_split = load_split("test", args.data_dir)
        recorder = AuditRecorder(run, config, train_split, test_split)
        recorder.start()
        bar = _EpochBar()

        def on_batch(progress):
            batch = progress.batch
            bar.show(batch, f"fold {progress.fold}/{progress.folds} epoch {batch.epoch}/{batch.epochs}")
            recorder.on_audit_batch(progress)

        def on_fold(fold, result):
            bar.close()
            m = fold.metrics
            print(
                f"fold {fold.fold}/{config.folds}  trained on {len(result.indices) - len(fold.held_out)} images"
                f"  held-out loss {m.test_loss:.4f} acc {m.test_acc:.4f}  {result.seconds:.1f}s so far",
                flush=True,
            )
            recorder.on_fold(fold, result)

        result = run_audit(
            config,
            train_split,
            test_split,
            on_batch=on_batch,
            on_fold=on_fold,
            should_stop=lambda: interrupted() or recorder.should_stop(),
        )
        bar.close()
        recorder.finish_audit(result)
    except BaseException as exc:
        _fail(run, recorder, config, exc)
        raise
    print(f"{result.status}: {run.path}", flush=True)
    return 0


class _EpochBar:
    """The terminal's progress bar of the epoch being trained: a new bar at each epoch's first batch."""

    def __init__(self):
        self._bar = None

    def show(self, progress, description: str) -> None:
        """Move to `progress` (a BatchProgress); a GPU run reports every few batches, not each one."""
        from tqdm import tqdm

        if self._bar is None or progress.batch == 1:
            self.close()
            self._bar = tqdm(total=progress.batches, desc=description, unit="batch", leave=False, disable=None)
        self._bar.update(progress.batch - self._bar.n)
        self._bar.set_postfix(loss=f"{progress.loss:.3f}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _fail(run, recorder, config, error: BaseException) -> None:
    """Mark the run failed by `error`: our own errors say what to do in their message; anything else is named."""
    from mnist_core.runs import initialize, mark_failed

    message = str(error) if isinstance(error, MnistLabError) else f"{type(error).__name__}: {error}"
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
    if args.predictions:
        _write_user_file(args.predictions, result.predictions_csv())
        output["predictions"] = args.predictions
    print(json.dumps(output, indent=2))
    return 0


def _write_user_file(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MnistLabError(f"Cannot write {path} ({exc.strerror}).") from exc


def _runs(args: argparse.Namespace) -> int:
    from mnist_core.runs import RunStore
    from mnist_core.summary import run_listing

    listing = [run_listing(run) for run in RunStore().list()]
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    if not listing:
        print("no runs yet: start one with `mnist-lab train`")
        return 0

    def percent(value) -> str:
        return f"{value:.2%}" if isinstance(value, (int, float)) else "-"

    width = max(len("id"), *(len(entry["id"]) for entry in listing))
    print(f"{'id':<{width}}  kind   status    epochs  final     best      started (UTC)")
    for entry in listing:
        planned = entry["epochs_planned"] if entry["epochs_planned"] is not None else "?"
        epochs = f"{entry['epochs_done']}/{planned}"
        started = (entry["started_at"] or "-")[:16].replace("T", " ")
        print(
            f"{entry['id']:<{width}}  {entry['kind']:<5}  {entry['status']:<8}  {epochs:>6}  "
            f"{percent(entry['final_test_acc']):>8}  {percent(entry['best_test_acc']):>8}  {started}"
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from mnist_core.export import export_onnx

    path = export_onnx(_checkpoint_or_bundled(args.checkpoint), args.onnx)
    print(f"wrote {path} (input 'image': N x 1 x 28 x 28 normalized floats; output 'logits': N x 10)")
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
    from mnist_core.label_issues import ensemble_probabilities, find_label_issues

    if args.audit:
        from mnist_core.audit_run import load_audit
        from mnist_core.runs import Run

        issues = load_audit(_existing_run(args.audit, Run)).issues(args.split, top=args.top)
    else:
        split = load_split(args.split, args.data_dir)
        checkpoints = [_run_checkpoint(path) for path in args.runs] if args.runs else [_checkpoint_or_bundled(args.checkpoint)]
        probabilities = ensemble_probabilities([analyze(checkpoint, split).probabilities for checkpoint in checkpoints])
        issues = find_label_issues(probabilities, split.labels.numpy(), top=args.top)
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


def _robustness(args: argparse.Namespace) -> int:
    from mnist_core.data import load_split
    from mnist_core.robustness import format_report, robustness_report

    checkpoint = _checkpoint_or_bundled(args.checkpoint)
    report = robustness_report(checkpoint, load_split("test", args.data_dir))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _existing_run(path: str, run_class):
    run = run_class(path)
    if not run.config_path.is_file():
        raise RunError(f"{path} is not a run directory (it has no config.json).")
    return run


def _run_checkpoint(path: str):
    """The model of a finished (or stopped) training run, for an ensemble."""
    from mnist_core.checkpoint import load_checkpoint
    from mnist_core.runs import KIND_TRAIN, Run

    run = _existing_run(path, Run)
    if run.kind != KIND_TRAIN:
        raise RunError(f"{path} is a label audit, not a training run: use --audit {path}.")
    if run.status() not in ("finished", "stopped") or not run.has_checkpoint():
        raise RunError(f"The run {run.id} is {run.status()} and has no model yet; wait for it to finish.")
    return load_checkpoint(run.checkpoint_path)


def _analyze(args: argparse.Namespace) -> int:
    from mnist_core.compare import resolve_model
    from mnist_core.data import load_split
    from mnist_core.maps import write_analysis
    from mnist_core.train import default_threads

    checkpoint = resolve_model(args.checkpoint)
    split = load_split(args.split, args.data_dir)
    try:
        summary = write_analysis(args.out, checkpoint.model, split, threads=default_threads(), digest=checkpoint.digest)
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
