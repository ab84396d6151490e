"""`tickwire hw ...` sub-commands (registered by the main CLI)."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer


def register(app, hw_app, model_app) -> None:
    @hw_app.command("report")
    def hw_report(blocks: str = typer.Option("", help="comma-separated block names "
                                             "(default: all)"),
                  as_json: bool = typer.Option(False, "--json")):
        """Synthesize each block with Yosys (synth_xilinx, UltraScale+) and report resources
        and the longest register-to-register path in LUT levels."""
        from .report import markdown_table, report
        names = [b.strip() for b in blocks.split(",") if b.strip()] or None
        reps = report(names, progress=None if as_json else
                      (lambda n: typer.echo(f"synthesized {n}", err=True)))
        if as_json:
            typer.echo(json.dumps([asdict(r) for r in reps]))
        else:
            typer.echo(markdown_table(reps))
