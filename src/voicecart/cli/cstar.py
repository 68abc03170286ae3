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
    test_from: Optional[datetime] = typer.Option(None, help="time split: test on events from this date "
                                                            "(default: Ta-Feng 2001-02-01, Complete Journey 2017-11-01)"),
    json_out: Path = typer.Option(Path("runs/cstar_eval.json"), "--json", help="report file"),
    markdown: Optional[Path] = typer.Option(None, help="also write the report as markdown tables"),
    labels: Optional[str] = typer.Option(None, help="profiling labels, comma-separated (default per dataset: "
                                                    "Ta-Feng age_group,postal_area; Complete Journey "
                                                    "has_kids,household_size,income_band)"),
    cv_repeats: Optional[int] = typer.Option(None, min=1, help="repeats of the probes' stratified 5 folds "
                                                               "(default: Ta-Feng 1, Complete Journey 10)"),
    max_events: Optional[int] = typer.Option(None, min=8, help="events per trajectory (default: trajectory.max_events)"),
    batch_size: int = typer.Option(256, min=2, help="pre-training batch size"),
    pretrain_history: Optional[int] = typer.Option(None, min=1, help="events of history pre-training draws its "
                                                                     "windows from (default: Ta-Feng the embedding "
                                                                     "window, Complete Journey 4096)"),
    epochs: int = typer.Option(4, min=1),
    ablation_epochs: Optional[int] = typer.Option(None, min=1, help="epochs for coarse-only / fine-only"),
    ablations: bool = typer.Option(True, help="also pre-train coarse-only, fine-only and the graph fine encoder"),
    resolution: bool = typer.Option(True, help="also item resolution: the ranker with vs without the embedding"),
    rolling: bool = typer.Option(True, help="choose the completion blend weights with twins pre-trained before the "
                                            "head month (doubles pre-training; off: the real encoders, still on "
                                            "customers kept out of pre-training)"),
    max_customers: Optional[int] = typer.Option(None, min=2, help="pre-train on a random subset"),
    run_dir: Optional[Path] = typer.Option(None, help="keep the pre-training runs (checkpoints) here"),
    img_dir: Optional[Path] = typer.Option(None, help="write cstar_map.png and cstar_loss.png here"),
    threads: int = typer.Option(1, min=1),
    seed: int = 0,
    config: Optional[Path] = typer.Option(None),
) -> None:
    """C-STAR on the three customer tasks (profiling, trajectory completion, item resolution), with baselines."""
    with _clear_errors():
        from voicecart.data import connect, read_manifest
        from voicecart.trajectory.evaluate import (LABELS, SOURCE_DEFAULTS, EvaluationConfig, evaluate_cstar,
                                                   report_markdown)
        from voicecart.trajectory.pretrain import TrainConfig

        settings = _settings(config)
        _threads(threads)
        source = read_manifest(data).source
        defaults = SOURCE_DEFAULTS.get(source, SOURCE_DEFAULTS["tafeng"])
        chosen = tuple(x.strip() for x in labels.split(",") if x.strip()) if labels else defaults["labels"]
        columns = connect(data).sql("SELECT * FROM customers LIMIT 0").columns
        unknown = [x for x in chosen if x not in LABELS and x not in columns]
        if unknown:
            raise ValueError(f"unknown profiling label(s) {', '.join(unknown)} (--labels); known: "
                             f"{', '.join(sorted(set(LABELS) | set(columns) - {'customer_id'}))}")
        test_from = test_from or defaults["test_from"]
        extra = {"image_suffix": "_cj", "map_title": "C-STAR household embeddings (t-SNE), Complete Journey "
                 f"to {test_from:%Y-%m-%d}"} if source == "completejourney" else {}
        cfg = EvaluationConfig(test_from=test_from, model={"dim": settings.trajectory.embedding_dim,
                                                           "max_events": max_events or settings.trajectory.max_events},
                               train=TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed,
                                                 max_customers=max_customers),
                               ablation_epochs=ablation_epochs, ablations=ablations, seed=seed, img_dir=img_dir,
                               labels=chosen, cv_repeats=cv_repeats or defaults["cv_repeats"],
                               pretrain_history=pretrain_history or defaults["pretrain_history"], rolling=rolling,
                               **extra)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cstar-eval-") as tmp:
            runs = run_dir or Path(tmp)
            with _progress() as update:
                report = evaluate_cstar(connect(data), cfg, run_dir=runs, progress=update)
            if resolution:
                from rich.console import Console

                from voicecart.evaluation.cstar import resolution_with_embedding

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


def register(app: typer.Typer, evaluate: typer.Typer) -> None:
    app.add_typer(cstar, name="cstar")
    evaluate.command("cstar")(evaluate_cstar_cmd)
