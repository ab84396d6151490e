"""`tickwire board build | deploy | status` (registered by the main CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

BOARDS = ("auto", "pynq", "xrt", "remote", "rtl")


def _fail(msg: str, code: int = 2):
    typer.echo(f"tickwire: {msg}", err=True)
    raise typer.Exit(code)


def _board(kind: str, device: Optional[str], index: int, man: dict | None):
    """The Board to deploy to / read: ``auto`` follows the manifest's flow."""
    from ..backends import board as b
    if kind == "auto":
        if device:
            kind = "remote"
        elif man is None:
            _fail("--board auto needs an artifact's manifest (--manifest) or --device")
        else:
            kind = man["flow"]
    if kind == "remote":
        if not device or ":" not in device:
            _fail("--board remote needs --device HOST:PORT (of `tickwire device serve`)")
        host, port = device.rsplit(":", 1)
        return b.RemoteBoard(host, int(port))
    if kind == "pynq":
        return b.PynqBoard()
    if kind == "xrt":
        return b.XrtBoard(index)
    if kind == "rtl":
        _fail("the rtl board lives in one process (tests, notebooks): serve it with "
              "`tickwire device serve --backend rtl` and use --board remote")
    _fail(f"--board {kind!r}: one of {', '.join(BOARDS)}")


def register(app, hw_app, model_app) -> None:
    board_app = typer.Typer(no_args_is_help=True,
                            help="Boards: vendor projects, deploy, status (PYNQ, Alveo).")
    app.add_typer(board_app, name="board")

    @board_app.command("build")
    def build(target: str = typer.Option(..., "--target", help="kv260 | zcu104 | u55c | rtl"),
              out: Path = typer.Option(..., "--out", help="project directory"),
              symbols: Optional[int] = typer.Option(None, help="symbol slots (default: the "
                                                    "target's)"),
              tools: bool = typer.Option(True, "--tools/--no-tools", help="run Vivado/Vitis "
                                         "when on PATH")):
        """Write a complete vendor project (Verilog, Tcl, constraints, build.sh,
        manifest.json); runs Vivado/Vitis when they are on PATH."""
        from ..hw.board.project import build_project
        cap = {"symbols": symbols} if symbols is not None else None
        try:
            man = build_project(target, out, capacity=cap, run_tools=tools,
                                log=lambda s: typer.echo(s, err=True))
        except ValueError as e:
            _fail(str(e))
        typer.echo(f"wrote {out} for {man['target']} ({man['part']}, {man['clock_mhz']:g} MHz): "
                   f"BUILD_ID {man['build_id']}, MAP_HASH {man['map_hash']}, Verilog in "
                   f"{man['verilog_seconds']:g} s")
        typer.echo(f"vendor tools: {man['tools']}"
                   + ("; run build.sh where they are" if man["tools"].startswith("not run")
                      else ""))

    @board_app.command("deploy")
    def deploy_cmd(artifact: Path = typer.Argument(..., help="project directory, manifest.json,"
                                                   " .bit or .xclbin"),
                   board: str = typer.Option("auto", "--board", help=" | ".join(BOARDS)),
                   device: Optional[str] = typer.Option(None, "--device",
                                                        help="HOST:PORT (remote)"),
                   index: int = typer.Option(0, help="XRT device index"),
                   force: bool = typer.Option(False, "--force", help="load even when the "
                                              "same BUILD_ID is loaded")):
        """Load a build onto a board (skipped when its BUILD_ID is already loaded) and check
        its identity; refuses a build whose register map is not this host's."""
        from ..backends import BackendUnavailable
        from ..backends.board import DeployError, deploy, load_manifest
        try:
            _, man = load_manifest(artifact)
            b = _board(board, device, index, man)
            try:
                r = deploy(artifact, b, force=force)
            finally:
                b.close()
        except (DeployError, BackendUnavailable, ConnectionError) as e:
            _fail(str(e))
        r.pop("dev")
        typer.echo(f"{r['action']}: {r['target']} BUILD_ID {r['build_id']} on {r['board']}"
                   + (" (already loaded)" if r["action"] == "reused" else ""))

    @board_app.command("status")
    def status_cmd(board: str = typer.Option("auto", "--board", help=" | ".join(BOARDS)),
                   device: Optional[str] = typer.Option(None, "--device",
                                                        help="HOST:PORT (remote)"),
                   index: int = typer.Option(0, help="XRT device index"),
                   manifest: Optional[Path] = typer.Option(None, "--manifest", help="the "
                                                           "project (or its manifest.json) to "
                                                           "compare with"),
                   interval: float = typer.Option(0.5, help="seconds between the CYCLES "
                                                  "reads"),
                   as_json: bool = typer.Option(False, "--json")):
        """Identity, STATUS, counters, the fabric clock measured from CYCLES, board health,
        and whether what is loaded matches the manifest."""
        from ..backends import BackendUnavailable
        from ..backends.board import DeployError, load_manifest, status
        try:
            proj, man = load_manifest(manifest) if manifest else (None, None)
            b = _board(board, device, index, man)
            try:
                dev = b.loaded(man, proj)
                if dev is None:
                    _fail(f"{b.kind}: no tickwire build found loaded (tickwire board deploy; "
                          "--manifest PROJECT locates its registers)", 1)
                s = status(dev, man, interval=interval, board=b)
            finally:
                b.close()
        except (DeployError, BackendUnavailable, ConnectionError) as e:
            _fail(str(e))
        if as_json:
            typer.echo(json.dumps(s, indent=2))
            return
        i = s["identity"]
        typer.echo(f"identity: ID {i['id']} v{i['version'][0]}.{i['version'][1]} MAP_HASH "
                   f"{i['map_hash']} (host {i['host_map_hash']}) BUILD_ID {i['build_id']}")
        typer.echo("status: " + ", ".join(f"{k}={v}" for k, v in s["status"].items()))
        c = s["clock"]
        typer.echo(f"clock: {c['cycles']} cycles in {c['seconds']:.3f} s = "
                   f"{(c['hz'] or 0) / 1e6:.3f} MHz ({c['of']})")
        nz = {k: v for k, v in s["counters"].items() if v}
        typer.echo(f"counters: {len(s['counters'])}, non-zero: " +
                   (", ".join(f"{k}={v}" for k, v in nz.items()) or "none"))
        if s["health"]:
            typer.echo(f"health: {json.dumps(s['health'])}")
        if "manifest" in s:
            m = s["manifest"]
            bad = [k for k, ok in m["checks"].items() if not ok]
            typer.echo(f"manifest {m['target']} {m['build_id']}: "
                       + ("matches" if m["matches"] else f"differs ({', '.join(bad)})"))
