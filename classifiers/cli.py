"""Subcommands `codecurate classifiers train|eval` and `codecurate recall run|status`."""

from __future__ import annotations

import sys


def _err(msg: str) -> int:
    print(f"codecurate: {msg}", file=sys.stderr)
    return 2


def cmd_train(args) -> int:
    from classifiers.model import TrainError, train
    from classifiers.pages import SeedError, read_pages
    from classifiers.settings import Hyper
    from pipeline.flags import FlagError, from_flags

    try:
        hyper = from_flags(Hyper, args)
        pos = [p for path in args.positives for p in read_pages(path)]
        neg = [p for path in args.negatives for p in read_pages(path)]
        meta = train(pos, neg, args.output, tokenizer=args.tokenizer, hyper=hyper, heldout=args.heldout,
                     threshold=args.threshold, target=args.target)
    except (FlagError, SeedError, TrainError) as e:
        return _err(str(e))
    m = meta["metrics"]["heldout"]
    print(f"model: {args.output} ({meta['data']['positives']['count']} positives, {meta['data']['negatives']['count']} negatives)")
    print(f"held-out: precision {m['precision']:.4f} recall {m['recall']:.4f} f1 {m['f1']:.4f} auc {m['auc'] if m['auc'] is None else round(m['auc'], 4)}")
    if hyper.thread != 1:
        print("note: threads > 1 makes fastText training non-deterministic", file=sys.stderr)
    return 0


LABEL_TRUE = {"1", "yes", "true", "pos", "positive", "y"}
LABEL_FALSE = {"0", "no", "false", "neg", "negative", "n"}


def _label(v, where: str) -> int:
    s = str(v).strip().lower()
    if s in LABEL_TRUE:
        return 1
    if s in LABEL_FALSE:
        return 0
    raise ValueError(f"{where}: label must be 1/0 or yes/no, got {v!r}")


def cmd_eval(args) -> int:
    from classifiers.metrics import evaluate, threshold_curve_png
    from classifiers.model import Classifier
    from classifiers.pages import SeedError, read_pages
    from pipeline import storage

    try:
        clf = Classifier.load(args.model_dir)
        labels, scores = [], []
        for path in args.data:
            for p in read_pages(path):
                if "label" not in p:
                    return _err(f"{path}: page {p['id']!r} has no 'label' field")
                labels.append(_label(p["label"], f"{path}: page {p['id']!r}"))
                scores.append(clf.score(p["text"]))
    except (SeedError, ValueError, FileNotFoundError) as e:
        return _err(str(e))
    if not labels:
        return _err("no labelled pages in --data")
    m = evaluate(labels, scores, args.threshold)
    png = args.plot or storage.join(args.model_dir, "threshold_curve.png")
    threshold_curve_png(labels, scores, png, title=f"{args.model_dir} on {len(labels)} pages")
    auc = "-" if m["auc"] is None else f"{m['auc']:.4f}"
    print(f"pages {m['n']} (positives {m['positives']}) threshold {m['threshold']}")
    print(f"precision {m['precision']:.4f} recall {m['recall']:.4f} f1 {m['f1']:.4f} auc {auc}")
    print(f"threshold curve: {png}")
    return 0


def cmd_recall_run(args) -> int:
    from pipeline import storage
    from pipeline.commands import _vars
    from pipeline.recipe import load_recipe
    from pipeline.runner import Runner

    recipe = load_recipe(args.recipe, _vars(args.var, args.run_dir))
    loops = [s for s in recipe.stages if s.kind == "recall" and (not args.stage or s.name == args.stage)]
    if not loops:
        return _err(f"{args.recipe}: no recall stage{' named ' + repr(args.stage) if args.stage else ''}")
    for s in loops:
        if args.rounds:
            s.rounds = args.rounds
        if args.auto_annotate:
            s.auto_annotate = True
        # rounds already on disk are kept (their phases are complete); only the stage marker goes
        marker = storage.join(recipe.run_dir, s.name, "_SUCCESS")
        if storage.exists(marker):
            fs, p = storage.fs_and_path(marker)
            fs.rm(p)
    names = [s.name for s in loops]
    runner = Runner(recipe, executor=args.executor, workers=args.workers, progress=not args.quiet)
    runner.run(sorted(recipe.upstream(names) | set(names)))
    for n in names:
        print(f"recall stage {n}: {storage.join(recipe.run_dir, n)}")
        for line in _status_lines(storage.join(recipe.run_dir, n)):
            print("  " + line)
    return 0


def _status_lines(stage_dir: str) -> list[str]:
    from classifiers.report import status_table
    from pipeline import storage

    lines = status_table(stage_dir)
    fs, p = storage.fs_and_path(storage.join(stage_dir, "annotations"))
    if fs.exists(p):
        last = sorted(fs.ls(p, detail=False))[-1:]
        lines += [f"annotations: {storage.join(stage_dir, 'annotations')} (latest: {last[0].rsplit('/', 1)[-1] if last else '-'})"]
    return lines


def cmd_recall_status(args) -> int:
    from pipeline import storage

    recipe = storage.read_json(storage.join(args.run_dir, "recipe.json"))
    if recipe is None:
        return _err(f"{args.run_dir}: no recipe.json (not a run directory)")
    stages = [s["name"] for s in recipe.get("stages", []) if s.get("kind") == "recall"]
    if not stages:
        return _err(f"{args.run_dir}: the recipe has no recall stage")
    for n in stages:
        sd = storage.join(args.run_dir, n)
        done = "complete" if storage.exists(storage.join(sd, "_SUCCESS")) else "not complete"
        print(f"recall stage {n} ({done}): {sd}")
        for line in _status_lines(sd):
            print("  " + line)
    return 0


def register(sub) -> None:
    from classifiers.settings import Hyper
    from pipeline.flags import add_flags

    p = sub.add_parser("classifiers", help="train and evaluate fastText page classifiers")
    csub = p.add_subparsers(dest="classifiers_command", required=True, metavar="ACTION")

    t = csub.add_parser("train", help="train a fastText classifier (model.bin + model.json)")
    t.add_argument("--positives", nargs="+", required=True, help="parquet/jsonl pages (files or directories)")
    t.add_argument("--negatives", nargs="+", required=True, help="parquet/jsonl pages (files or directories)")
    t.add_argument("--output", required=True, help="model directory to write")
    t.add_argument("--tokenizer", choices=["deepseek", "whitespace"], default="deepseek")
    t.add_argument("--target", default="yes", help="what a positive is (recorded in model.json)")
    # the recall stage's fastText keys, declared once (`classifiers.model.Hyper`); defaults fit a few dozen
    # seed pages; DeepSeekMath: --dim 256 --lr 0.1 --word-ngrams 3 --min-count 3 --epoch 3 --bucket 2000000
    add_flags(t, Hyper)
    t.add_argument("--heldout", type=float, default=0.2, help="share of pages held out for metrics")
    t.add_argument("--threshold", type=float, default=0.5)
    t.set_defaults(func=cmd_train)

    e = csub.add_parser("eval", help="precision, recall, F1, AUC and a threshold curve on labelled pages")
    e.add_argument("model_dir")
    e.add_argument("--data", nargs="+", required=True, help="parquet/jsonl pages with text and label (1/0, yes/no)")
    e.add_argument("--threshold", type=float, default=0.5)
    e.add_argument("--plot", help="PNG path (default MODEL_DIR/threshold_curve.png)")
    e.set_defaults(func=cmd_eval)

    p = sub.add_parser("recall", help="the iterative recall loop (train, recall, domains, annotate, grow)")
    rsub = p.add_subparsers(dest="recall_command", required=True, metavar="ACTION")
    r = rsub.add_parser("run", help="run (or continue) a recipe's recall stage for K rounds")
    r.add_argument("recipe")
    r.add_argument("--rounds", type=int, help="total rounds (continues from the rounds on disk)")
    r.add_argument("--auto-annotate", action="store_true", help="accept prefixes by their recalled share, unattended")
    r.add_argument("--stage", help="the recall stage to run (default: every recall stage)")
    r.add_argument("--run-dir", help="override the recipe's run_dir")
    r.add_argument("--var", action="append", help="KEY=VALUE for ${KEY} in the recipe (repeatable)")
    r.add_argument("--executor", choices=["ray", "local"])
    r.add_argument("--workers", type=int)
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_recall_run)
    s = rsub.add_parser("status", help="per-round numbers of a run's recall stages")
    s.add_argument("run_dir")
    s.set_defaults(func=cmd_recall_status)
