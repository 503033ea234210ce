"""`odfail synth`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write gt.json and predictions.json into.")],
    images: Annotated[int, typer.Option(help="Number of images (val2017 has 5,000).")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    masks: Annotated[bool, typer.Option("--masks", help="Give every prediction a mask (compressed RLE), as a "
                                                        "Mask R-CNN's results have.")] = False,
    render: Annotated[bool, typer.Option("--render", help="Also draw the images (OUT/images): the objects on "
                                                          "textured backgrounds, darker and blurrier where the "
                                                          "predictions miss more.")] = False,
) -> None:
    """Generate a COCO-like GT and predictions with realistic failure modes (misses of small objects,
    localisation jitter, confusion with similar classes, duplicates, background false positives, crowd)."""
    from odfail.synth import generate

    typer.echo(str(generate(out, images=images, seed=seed, masks=masks)))
    if render:
        from odfail.synth_render import render as draw

        typer.echo(f"drew the images in {draw(out, seed)}")
