"""``highlights train`` and ``evaluate``: the face models' commands."""

from __future__ import annotations

import logging
from pathlib import Path

import click

log = logging.getLogger(__name__)


@click.command("train")
@click.argument("task", type=click.Choice(["smile", "age"]))
@click.option("--data", "data_dirs", multiple=True, required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with labels.csv (file,label; 1 = smiling / child) or a shared set; repeatable.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Weights file to write.")
@click.option("--init", "init_path", metavar="FILE.pt|shipped",
              help="Start from these weights (fine-tuning); 'shipped': the shipped TASK weights.")
@click.option("--epochs", type=int, default=None, help="Epochs (default 20; 8 with --init).")
@click.option("--lr", type=float, default=None, help="Peak learning rate (default 3e-3; 3e-4 with --init).")
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the split, augmentation and weights.")
@click.option("--val-fraction", type=float, default=0.2, show_default=True, help="Held-out share (of people, where known).")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--max-minutes", type=float, default=None, help="Stop after the epoch that passes this time.")
def train_command(task, data_dirs, out_path, init_path, epochs, lr, batch_size, seed, val_fraction,
                  threads, max_minutes) -> None:
    """Train the TASK model (smile or age = child/adult) on labelled face images and write weights.

    Images may be photos with one face (found with the pipeline's detector) or tight face crops.
    Prints the validation figures; the weights file records data, recipe, metrics and seed.
    """
    from highlights.tools.training.datasets import LabelsError
    from highlights.tools.training.train import TrainConfig, train_model

    if init_path == "shipped":
        from highlights.models.face_cnn import shipped_weights_path

        init_path = shipped_weights_path(task)
    elif init_path is not None:
        init_path = Path(init_path)
        if not init_path.is_file():
            raise click.BadParameter(f"no weights file {init_path}", param_hint="--init")
    config = TrainConfig(
        task=task,
        epochs=epochs if epochs is not None else (8 if init_path else 20),
        lr=lr if lr is not None else (3e-4 if init_path else 3e-3),
        batch_size=batch_size,
        seed=seed,
        val_fraction=val_fraction,
        threads=threads,
        max_minutes=max_minutes,
    )
    try:
        result = train_model(task, list(data_dirs), out_path, config, init=init_path)
    except LabelsError as error:
        raise click.ClickException(str(error)) from error
    if result.validation is not None:
        click.echo(result.validation.report())
    click.echo(f"wrote {out_path} (sha256 {result.sha256[:12]}, threshold {result.threshold:.3f}, "
               f"{result.seconds / 60:.1f} min)")


@click.command("evaluate")
@click.argument("task", type=click.Choice(["smile", "age"]))
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with labels.csv or a shared set.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Weights file (default: the shipped ones).")
@click.option("--split", type=click.Choice(["validation", "all"]), default="validation", show_default=True,
              help="validation: the held-out split the weights were trained with; all: every image.")
@click.option("--max-faces", type=int, default=None, help="Evaluate a fixed, seeded subset of this many faces.")
@click.option("--adult-only", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="age: folder of adult faces from another source for the false-child rate "
                   "(default: the shared LFW expression set when found).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the figures as JSON.")
def evaluate_command(task, data_dir, weights, split, max_faces, adult_only, json_path) -> None:
    """Evaluate the TASK model: ROC AUC, accuracy at its threshold, calibration (and for age: AUC per
    age band and the false-child rate on adult-only faces from another source)."""
    from highlights.files import write_json_atomic
    from highlights.models.face_cnn import WeightsError
    from highlights.tools.training.datasets import LabelsError
    from highlights.tools.training.evaluate import evaluate_model

    try:
        result = evaluate_model(task, data_dir, weights, split=split, max_faces=max_faces,
                                adult_only=adult_only if adult_only else "auto")
    except (LabelsError, WeightsError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(result.report())
    if json_path:
        write_json_atomic(json_path, result.to_dict())


# --------------------------------------------------------------------------- highlights dashboard
