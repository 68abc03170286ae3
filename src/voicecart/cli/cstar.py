"""`voicecart cstar pretrain|embed|export-onnx` and `voicecart evaluate cstar`: the C-STAR trajectory encoder."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

import typer

cstar = typer.Typer(help="C-STAR shopping-trajectory embeddings: pre-train, embed, export.", no_args_is_help=True)


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=1)


@contextmanager
def _clear_errors() -> Iterator[None]:
    """Known failures become one line naming the problem, never a stack trace."""
    from voicecart.config import ConfigError
    from voicecart.data import DataError
    from voicecart.trajectory import TrainingDiverged

    try:
        yield
    except (DataError, ConfigError, TrainingDiverged, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


@contextmanager
def _progress() -> Iterator:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}")) as bar:
        tasks: dict[str, int] = {}

        def update(description: str, done: int, total: int, info: str = "") -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=max(total, 1), info="")
            bar.update(tasks[description], completed=done, total=max(total, 1), info=info)

        yield update


def _settings(config: Optional[Path]):
    from voicecart.config import load_settings

    return load_settings(config)


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


@cstar.command("pretrain")
def pretrain_cmd(
    data: Path = typer.Option(..., help="prepared dataset folder (canonical parquet)"),
    out: Path = typer.Option(Path("runs/cstar"), help="run folder: checkpoint.pt, history.json, loss.png"),
    until: Optional[datetime] = typer.Option(None, help="pre-train on events before this date (exclusive)"),
    epochs: int = typer.Option(4, min=1),
    batch_size: int = typer.Option(256, min=2),
    lr: float = typer.Option(2e-3, min=0.0),
    max_customers: Optional[int] = typer.Option(None, min=2, help="pre-train on a random subset"),
    resume: bool = typer.Option(True, help="continue from OUT/checkpoint.pt when it exists"),
    threads: int = typer.Option(1, min=1, help="torch CPU threads"),
    seed: int = 0,
    config: Optional[Path] = typer.Option(None, help="voicecart YAML settings"),
) -> None:
    """Pre-train the encoder on every customer's trajectory before UNTIL."""
    with _clear_errors():
        from rich.console import Console

        from voicecart.data import connect
        from voicecart.trajectory import CategoryVocab, CStarConfig, TrainConfig, as_day, load_events, pretrain

        settings = _settings(config)
        _threads(threads)
        cut = until or datetime.now()
        events = load_events(connect(data), until=cut)
        window = events.window(cut, days=settings.trajectory.window_days, max_events=settings.trajectory.max_events)
        out.mkdir(parents=True, exist_ok=True)
        vocab_path = out / "vocab.json"
        vocab = CategoryVocab.load(vocab_path) if resume and vocab_path.exists() else \
            CategoryVocab.from_paths(window.l1, window.l2, window.l3)
        vocab.save(vocab_path)
        sizes = vocab.sizes
        model_cfg = CStarConfig(*sizes, dim=settings.trajectory.embedding_dim, max_events=settings.trajectory.max_events)
        train = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_customers=max_customers)
        Console(stderr=True).print(f"read {events.offsets[-1]:,} category events of {len(events):,} customers "
                                   f"from {data} (before {cut:%Y-%m-%d}); vocabulary {sizes}")
        with _progress() as update:
            result = pretrain(window.encode(vocab), vocab, as_day(cut), model_cfg, train, out, resume=resume,
                              on_step=lambda s, n, r: update("pre-train", s, n, f"loss {r['loss']:.3f}"))
        Console(stderr=True).print(f"wrote {out / 'checkpoint.pt'} and {out / 'loss.png'} "
                                   f"({result.trajectories_per_s:.0f} trajectories/s)")


@cstar.command("embed")
def embed_cmd(
    checkpoint: Path = typer.Option(..., help="run folder or checkpoint.pt"),
    data: Path = typer.Option(..., help="prepared dataset folder"),
    out: Path = typer.Option(..., help="embedding parquet (customer_id, event_timestamp, embedding)"),
    as_of: Optional[datetime] = typer.Option(None, help="read trajectories up to this time (default: now)"),
    onnx: Optional[Path] = typer.Option(None, help="also export the encoder to this ONNX file"),
    feature_dir: Optional[Path] = typer.Option(None, help="also write them where the Feast embedding view reads "
                                                          "(the offline features folder)"),
    threads: int = typer.Option(1, min=1),
    config: Optional[Path] = typer.Option(None),
) -> None:
    """Embed every customer of DATA as of AS_OF and write the parquet the Feast embedding view reads."""
    with _clear_errors():
        import numpy as np
        from rich.console import Console

        from voicecart.data import connect
        from voicecart.trajectory import as_day, embed_events, export_onnx, load_encoder, load_events, write_embeddings

        settings = _settings(config)
        _threads(threads)
        model, vocab, _ = load_encoder(checkpoint)
        cut = as_of or datetime.now()
        window = load_events(connect(data), until=cut).window(cut, days=settings.trajectory.window_days,
                                                              max_events=model.cfg.max_events)
        customers = connect(data).sql("SELECT customer_id FROM customers ORDER BY 1").to_arrow_table()
        # every known customer gets a row: those with no events in the window get the "no history" vector
        window = window.including(np.asarray(customers.column("customer_id").to_pylist(), dtype=object))
        with _progress() as update:
            emb = embed_events(model, window.encode(vocab), as_day(cut), on_batch=lambda d, n: update("embed", d, n))
        write_embeddings(out, window.customer_ids, cut, emb)
        Console(stderr=True).print(f"wrote {len(emb):,} embeddings (dim {emb.shape[1]}) to {out}")
        if feature_dir is not None:
            from voicecart.features import write_embeddings as write_feature_embeddings

            path = write_feature_embeddings(feature_dir, [str(c) for c in window.customer_ids], emb, cut)
            Console(stderr=True).print(f"wrote the customer_embedding view's file {path}")
        if onnx is not None:
            export_onnx(model, onnx)
            Console(stderr=True).print(f"wrote the ONNX encoder to {onnx}")


@cstar.command("export-onnx")
def export_cmd(checkpoint: Path = typer.Option(..., help="run folder or checkpoint.pt"),
               out: Path = typer.Option(..., help="ONNX file")) -> None:
    """Export the encoder (inputs l1..valid [B, T], output embedding [B, E]) to ONNX."""
    with _clear_errors():
        from voicecart.trajectory import export_onnx, load_encoder

        model, _, _ = load_encoder(checkpoint)
        export_onnx(model, out)
        typer.echo(f"wrote {out}")


def evaluate_cstar_cmd(
    data: Path = typer.Option(..., help="prepared dataset folder"),
    test_from: datetime = typer.Option(datetime(2001, 2, 1), help="time split: test on events from this date"),
    json_out: Path = typer.Option(Path("runs/cstar_eval.json"), "--json", help="report file"),
    markdown: Optional[Path] = typer.Option(None, help="also write the report as markdown tables"),
    epochs: int = typer.Option(4, min=1),
    ablation_epochs: Optional[int] = typer.Option(None, min=1, help="epochs for coarse-only / fine-only"),
    ablations: bool = typer.Option(True, help="also pre-train coarse-only, fine-only and the graph fine encoder"),
    resolution: bool = typer.Option(True, help="also item resolution: the ranker with vs without the embedding"),
    max_customers: Optional[int] = typer.Option(None, min=2, help="pre-train on a random subset"),
    run_dir: Optional[Path] = typer.Option(None, help="keep the pre-training runs (checkpoints) here"),
    img_dir: Optional[Path] = typer.Option(None, help="write cstar_map.png and cstar_loss.png here"),
    threads: int = typer.Option(1, min=1),
    seed: int = 0,
    config: Optional[Path] = typer.Option(None),
) -> None:
    """C-STAR on the three customer tasks (profiling, trajectory completion, item resolution), with baselines."""
    with _clear_errors():
        from voicecart.data import connect
        from voicecart.trajectory.evaluate import EvaluationConfig, evaluate_cstar, report_markdown
        from voicecart.trajectory.pretrain import TrainConfig

        settings = _settings(config)
        _threads(threads)
        cfg = EvaluationConfig(test_from=test_from, model={"dim": settings.trajectory.embedding_dim,
                                                           "max_events": settings.trajectory.max_events},
                               train=TrainConfig(epochs=epochs, seed=seed, max_customers=max_customers),
                               ablation_epochs=ablation_epochs, ablations=ablations, seed=seed, img_dir=img_dir)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cstar-eval-") as tmp:
            runs = run_dir or Path(tmp)
            with _progress() as update:
                report = evaluate_cstar(connect(data), cfg, run_dir=runs, progress=update)
            if resolution:
                from rich.console import Console

                report["resolution"] = resolution_with_embedding(data, runs / "cstar", test_from,
                                                                 log=Console(stderr=True).print,
                                                                 no_pretraining=runs / "no_pretraining")
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2, default=str))
        if markdown is not None:
            markdown.parent.mkdir(parents=True, exist_ok=True)
            markdown.write_text(report_markdown(report) + "\n")
        c = report["completion"]
        typer.echo(f"Recall@10: C-STAR {c['cstar']['recall@10']['value']:.4f}, frequency+popularity "
                   f"{c['frequency_popularity']['recall@10']['value']:.4f}; report in {json_out}")


def resolution_with_embedding(data: Path, checkpoint: Path, test_from: datetime, *, months: int = 2,
                              epochs: int = 4, n_boot: int = 300, log=print,
                              no_pretraining: Path | None = None) -> dict:
    """Item resolution: the ranking engineer's ranker trained and tested on their category-query protocol
    (``voicecart.evaluation.resolution``) without the C-STAR feature, and with it — the customer's
    embedding (``History.embedding``) dotted with each product's buyer centroid
    (``Catalog.embedding_items``), both as of each cut. ``no_pretraining``: also with the embedding of the
    same encoder before pre-training (its checkpoint), so the pre-training's own share is measured.
    HR@1 of each and the paired differences."""
    import numpy as np

    from voicecart.data import connect
    from voicecart.evaluation.metrics import summarize, truth_ranks
    from voicecart.evaluation.resolution import Snapshot, month_starts, train_on_cuts
    from voicecart.ranking import Purchases, RankerConfig
    from voicecart.ranking.history import to_day
    from voicecart.ranking.train import category_queries, list_features, score_rows
    from voicecart.trajectory import as_day, buyer_centroids, embed_events, load_encoder, load_events
    from voicecart.trajectory.tasks import bootstrap

    con = connect(data)
    purchases = Purchases.from_dataset(data)
    events = load_events(con).including(purchases.customer_ids)
    start = to_day(test_from)
    cuts = month_starts(float(purchases.day.min()), start, months)
    if not cuts:
        raise ValueError(f"item resolution trains on whole months before --test-from {test_from:%Y-%m-%d} and the "
                         "data has none (it needs a first-of-month cut at least 28 days after the first order); "
                         "use a later --test-from or --no-resolution")

    def snapshots_of(model, vocab):
        snapshots: dict[float, Snapshot] = {}  # embedding a window is the costly part: once per cut

        def snapshot(day: float) -> Snapshot:
            snap = Snapshot.build(purchases, day)
            if model is None:
                return snap
            cut = datetime.utcfromtimestamp(day * 86_400)
            enc = events.window(cut, max_events=model.cfg.max_events).encode(vocab)
            emb = embed_events(model, enc, as_day(cut))
            row = {str(c): i for i, c in enumerate(enc.customer_ids)}
            snap.history.embedding = emb[[row[str(c)] for c in purchases.customer_ids]]
            products, vectors = buyer_centroids(con, enc.customer_ids, emb, cut)
            items = np.zeros((len(purchases.product_ids), emb.shape[1]), np.float32)
            where = {p: i for i, p in enumerate(products)}
            for j, p in enumerate(purchases.product_ids):
                if p in where:
                    items[j] = vectors[where[p]]
            snap.catalog.embedding_items = items
            return snap

        def cached(_: Purchases, day: float) -> Snapshot:
            if day not in snapshots:
                snapshots[day] = snapshot(day)
            return snapshots[day]
        return cached

    arms = {"without_embedding": (None, None), "with_embedding": load_encoder(checkpoint)[:2]}
    if no_pretraining is not None:
        arms["with_no_pretraining"] = load_encoder(no_pretraining)[:2]
    hits, out = {}, {}
    for name, (model, vocab) in arms.items():
        use = model is not None
        cached = snapshots_of(model, vocab)
        test = cached(purchases, start)
        tq = category_queries(purchases, test.catalog, test.history, test.aggregates, start,
                              float(purchases.day.max()) + 1)
        out["queries"] = int(len(tq))
        ranker = train_on_cuts(purchases, cuts, start, cached, config=RankerConfig(epochs=epochs, use_embedding=use),
                               log=log)
        feats = list_features(tq, test.catalog, test.history, test.aggregates, use_embedding=use)
        ranks = truth_ranks(score_rows(ranker, feats, tq.offsets), tq.label, tq.offsets)
        hits[name] = (ranks == 1).astype(float)
        out[name] = summarize(ranks, n_boot=n_boot)["all"]
    out["hr@1_gain"] = bootstrap(hits["with_embedding"] - hits["without_embedding"]).as_dict()
    if "with_no_pretraining" in hits:
        out["hr@1_gain_over_no_pretraining"] = bootstrap(hits["with_embedding"] - hits["with_no_pretraining"]).as_dict()
    return out


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(cstar, name="cstar")
    evaluate.command("cstar")(evaluate_cstar_cmd)
