"""`tickwire hw ...` sub-commands (registered by the main CLI)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer


def register(app, hw_app, model_app) -> None:
    @hw_app.command("report")
    def hw_report(blocks: str = typer.Option("", help="comma-separated block names "
                                             "(default: all)"),
                  as_json: bool = typer.Option(False, "--json"),
                  top: str = typer.Option("", "--top", help="appliance: the whole design "
                                          "(flattened) instead of the blocks"),
                  target: str = typer.Option("kv260", "--target", help="board target of "
                                             "--top appliance (capacities, part)"),
                  timeout: float = typer.Option(600, help="seconds --top appliance may "
                                                "take"),
                  keep: str = typer.Option("", "--keep", help="--top appliance: folder to "
                                           "synthesize in and keep (Verilog, logs, netlists)")):
        """Synthesize each block with Yosys (synth_xilinx, UltraScale+) and report resources
        and the longest register-to-register path in LUT levels."""
        if top:
            if top != "appliance":
                raise typer.BadParameter("--top: only 'appliance'")
            from .board.synth import appliance_markdown, appliance_report
            r = appliance_report(target, timeout=timeout, keep=Path(keep) if keep else None)
            typer.echo(json.dumps(r) if as_json else appliance_markdown(r))
            raise typer.Exit(1 if r["report"]["error"] else 0)
        from .report import markdown_table, report
        names = [b.strip() for b in blocks.split(",") if b.strip()] or None
        reps = report(names, progress=None if as_json else
                      (lambda n: typer.echo(f"synthesized {n}", err=True)))
        if as_json:
            typer.echo(json.dumps([asdict(r) for r in reps]))
        else:
            typer.echo(markdown_table(reps))
