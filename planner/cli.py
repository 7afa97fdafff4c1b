"""The `planner` command line: parse, call the library, print. Nothing heavy is imported at start-up.

Exit codes: 0 success (a plan was found); 2 bad input (spec, catalog or options); 3 the spec is
infeasible (no plan meets its limits); 4 no plan found within the time limit; 1 an internal error (a bug).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from planner.errors import PlannerError

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_INFEASIBLE = 3
EXIT_TIMEOUT = 4


class PlannerGroup(click.Group):
    """Turns PlannerError into one line per problem and a non-zero exit; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PlannerError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            for problem in exc.problems:
                click.echo(f"error: {problem.render()}", err=True)
            sys.exit(exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"internal error: {exc.__class__.__name__}: {exc} (rerun with --debug for the traceback)", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=PlannerGroup)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--catalog-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Use catalogs from this folder instead of the shipped ones.")
@click.version_option(package_name="planner")
@click.pass_context
def main(ctx: click.Context, debug: bool, catalog_dir: Path | None) -> None:
    """Plan deployments of AI workloads: devices, clouds, parallel layouts, with reasons."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["catalog_dir"] = catalog_dir


def _catalog(ctx: click.Context, prices: tuple[Path, ...] = (), scenario: Path | None = None):
    """The shipped catalogs, with fresher prices from SkyPilot-style CSVs and a price scenario on top."""
    from planner.catalog.loader import load_catalogs

    catalog = load_catalogs(ctx.obj.get("catalog_dir"))
    if prices or scenario:
        from planner.catalog.prices_io import apply_scenario, read_skypilot_csv, with_prices

        for path in prices:
            offerings, skipped = read_skypilot_csv(path, catalog)
            catalog = with_prices(catalog, offerings, path.name)
            ctx.obj.setdefault("price_providers", set()).update(o.provider for o in offerings)
            click.echo(f"prices: {len(offerings)} offerings from {path}"
                       + (f"; {len(skipped)} rows skipped (first: {skipped[0]})" if skipped else ""), err=True)
        if scenario:
            catalog, applied = apply_scenario(catalog, scenario)
            click.echo(f"price scenario: {applied.name}", err=True)
    if ctx.obj.get("calibration") is not None:
        from planner.calibrate.overlay import apply_calibration

        catalog = apply_calibration(catalog, ctx.obj["calibration"])
        click.echo(f"calibration: {ctx.obj['calibration']}", err=True)
    return catalog


def _with_price_providers(ctx: click.Context, spec):
    """A price file's providers join a spec that lists its providers, so its offerings are not read and
    then silently filtered out."""
    providers = spec.search.providers
    extra = sorted(ctx.obj.get("price_providers", set()) - set(providers)) if providers else []
    if not extra:
        return spec
    click.echo(f"prices: provider(s) {', '.join(extra)} from --prices join search.providers", err=True)
    return spec.model_copy(update={"search": spec.search.model_copy(update={"providers": [*providers, *extra]})})


def _finite(ctx, param, value):
    """FloatRange lets nan through (every comparison with it is false)."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number of seconds")
    return value


def _remember_calibration(ctx: click.Context, param, value):
    if value is not None:
        ctx.ensure_object(dict)["calibration"] = value
    return value


def price_options(f):
    f = click.option("--calibration", type=click.Path(path_type=Path), default=None, expose_value=False,
                     callback=_remember_calibration,
                     help="A calibration overlay from `planner calibrate`: fitted family and engine parameters "
                          "replace the shipped ones.")(f)
    f = click.option("--price-scenario", "price_scenario", type=click.Path(path_type=Path), default=None,
                     help="YAML rules that scale or replace prices (spot -60%, a discount, a new region).")(f)
    return click.option("--prices", "prices", type=click.Path(path_type=Path), multiple=True,
                        help="SkyPilot-style catalog CSV with fresher prices (repeatable).")(f)


@main.command()
@click.option("--tier", is_flag=True, help="The tier spec's schema (planner tier) instead.")
def schema(tier: bool) -> None:
    """Print the workload spec's JSON Schema."""
    if tier:
        from planner.tier.spec import TierSpec

        click.echo(json.dumps(TierSpec.model_json_schema(by_alias=True), indent=2))
        return
    from planner.spec import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2))


def _kind(spec_path: Path) -> str:
    """fleet, tier or workload; a path that is not a readable file is left for the loader to report."""
    from planner.errors import SpecError
    from planner.yamlio import file_kind

    if str(spec_path) != "-" and not spec_path.is_file():
        return "workload"
    return file_kind(spec_path, SpecError)


@main.command()
@click.argument("spec_path", type=click.Path(path_type=Path))
@click.pass_context
def validate(ctx: click.Context, spec_path: Path) -> None:
    """Check a spec (workload, tier or fleet) against the schema and the catalogs."""
    from planner.evaluate import resolve_workload
    from planner.spec import load_spec

    kind = _kind(spec_path)
    if kind == "fleet":
        from planner.fleet import check_fleet

        fleet_spec, members = check_fleet(spec_path, _catalog(ctx))
        click.echo(f"ok: {fleet_spec.name} (fleet of {len(members)} workload(s) over {fleet_spec.horizon_years:g} "
                   f"year(s))")
        return

    if kind == "tier":
        from planner.tier.options import check_references
        from planner.tier.spec import load_tier_spec

        tier_spec = load_tier_spec(spec_path)
        check_references(tier_spec, _catalog(ctx), str(spec_path))
        click.echo(f"ok: {tier_spec.name} (tier spec: {len(tier_spec.workloads)} workload(s), "
                   f"{tier_spec.site.count} site(s))")
        return

    spec = load_spec(spec_path)
    work = resolve_workload(spec, _catalog(ctx), str(spec_path))
    click.echo(f"ok: {spec.name} ({spec.workload.kind} of {work.model_id}, objective {spec.objective})")


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)


@main.command()
@click.argument("spec_path", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown", "html"]), default="table",
              show_default=True)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=None,
              help="Write the json, markdown or html report to this file instead of standard output.")
@click.option("--no-explain", is_flag=True, help="Skip the explanation (binding limits, why not, conflicts).")
@price_options
@click.pass_context
def tier(ctx: click.Context, spec_path: Path, fmt: str, output: Path | None, no_explain: bool,
         prices: tuple[Path, ...], price_scenario: Path | None) -> None:
    """Decide edge, cloud or split for each workload of a tier SPEC, minimising cost per site per month.

    \b
    Exit codes: 0 plan found, 2 bad input, 3 infeasible.
    """
    from planner.tier import plan_tier_file
    from planner.tier.report import as_dict, lines, markdown

    _check_output(output, fmt)
    result = plan_tier_file(spec_path, _catalog(ctx, prices, price_scenario), explain=not no_explain)
    if fmt == "json":
        _write(output, json.dumps(as_dict(result), indent=2, default=str))
    elif fmt == "html":
        from planner.html.others import tier_page

        _write(output, tier_page(json.loads(json.dumps(as_dict(result), default=str)), _spec_text(spec_path)))
    elif fmt == "markdown":
        _write(output, markdown(result))
    else:
        click.echo("\n".join(lines(result)))
    if result.plan.status == "infeasible":
        sys.exit(EXIT_INFEASIBLE)
    if result.plan.status == "unknown":
        sys.exit(EXIT_TIMEOUT)


def configuration_options(device_required: bool):
    """The flags that fix one configuration (planner estimate, planner simulate)."""
    def apply(f):
        for option in reversed([
            click.option("--device", required=device_required, default=None,
                         help="Accelerator id (see `planner catalog list devices`)."
                              + ("" if device_required else " Without it: the plan `planner solve` picks.")),
            click.option("--tp", type=click.IntRange(min=1), default=1, show_default=True, help="Tensor-parallel degree."),
            click.option("--pp", type=click.IntRange(min=1), default=1, show_default=True, help="Pipeline-parallel degree."),
            click.option("--dp", type=click.IntRange(min=1), default=None,
                         help="Data-parallel degree (training) or replicas (serving); default: 1 for training, "
                              "the fewest replicas that keep up with the load otherwise."),
            click.option("--ep", type=click.IntRange(min=1), default=1, show_default=True, help="Expert-parallel degree."),
            click.option("--attention-dp", is_flag=True, default=False,
                         help="MoE serving: attention data parallel over the --tp devices, experts expert-parallel "
                              "over them (needs --ep equal to --tp)."),
            click.option("--role", type=click.Choice(["both", "prefill", "decode"]), default="both", show_default=True,
                         help="Serving: whole requests, or one pool of a disaggregated plan (its own side's "
                              "latencies: the prefill pool's TTFT with the KV transfer, the decode pool's TPOT)."),
            click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "fp8", "int8", "int4", "fp4", "mxfp4"]),
                         default=None, help="Default: the spec's first precision, else bf16."),
            click.option("--micro-batch", type=click.IntRange(min=1), default=None,
                         help="Training micro-batch (default 1); serving: the engine's cap on running sequences per "
                              "replica (max_num_seqs; default: the engine's own); vision: frames per batch (default 1)."),
            click.option("--cp", type=click.IntRange(min=1), default=1, show_default=True,
                         help="Context-parallel degree (training): each sequence split over cp devices."),
            click.option("--zero", "zero_stage", type=click.IntRange(0, 3), default=None,
                         help="ZeRO stage (3 = FSDP full sharding); default: the workload framework's."),
            click.option("--shard-group", type=click.IntRange(min=1), default=None,
                         help="ZeRO-3/FSDP hybrid sharding: devices one shard spans (default: every replica)."),
            click.option("--recompute", type=click.Choice(["none", "selective", "full"]), default="selective",
                         show_default=True),
            click.option("--virtual-stages", type=click.IntRange(min=1), default=1, show_default=True,
                         help="Interleaved pipeline chunks per device."),
            click.option("--system", "system_id", default=None, help="Force a system (node type) from the catalog."),
            click.option("--provider", default=None),
            click.option("--region", default=None),
            click.option("--pricing", type=click.Choice(["on-demand", "spot", "reserved-1y", "reserved-3y",
                                                         "capacity-block", "owned"]), default=None,
                         help="owned: on-prem hardware, costed from the spec's onprem site (electricity)."),
        ]):
            f = option(f)
        return f
    return apply


CONFIG_KEYS = ("device", "tp", "pp", "dp", "ep", "cp", "precision", "micro_batch", "zero_stage", "shard_group", "recompute",
               "virtual_stages", "system_id", "provider", "region", "pricing")


@main.command()
@click.argument("spec_path", type=click.Path(path_type=Path))
@configuration_options(device_required=True)
@FORMAT
@price_options
@click.pass_context
def estimate(ctx: click.Context, spec_path: Path, fmt: str, prices: tuple[Path, ...], price_scenario: Path | None,
             **config) -> None:
    """Predict one fixed configuration of SPEC: speed, memory, power and cost, with the breakdown."""
    from planner.estimate import estimate_configuration
    from planner.report import evaluation_dict, render_evaluation, to_json
    from planner.spec import load_spec

    spec = load_spec(spec_path)
    ev, checks = estimate_configuration(spec, _catalog(ctx, prices, price_scenario), spec_file=str(spec_path), **config)
    pred = ev.prediction
    headline = None if pred.fits else (
        f"does not fit: {pred.memory_gib_per_device:.1f} GiB per device needed, "
        f"{pred.memory_capacity_bytes / 2**30:.1f} GiB on {ev.candidate.device}; more tp/pp, ZeRO-3 or recompute "
        f"would lower it")
    if fmt == "json":
        click.echo(to_json(evaluation_dict(ev, checks)))
    else:
        if headline:
            click.echo(headline)
        render_evaluation(ev, checks)
    if headline:
        if fmt == "json":
            click.echo(headline, err=True)
        sys.exit(EXIT_INFEASIBLE)


@main.command()
@click.argument("spec_path", type=click.Path(path_type=Path))
@configuration_options(device_required=False)
@click.option("--requests", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Poisson arrivals to simulate (at the spec's rate, per plan part at its share).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lengths", type=click.Choice(["fixed", "uniform"]), default="fixed", show_default=True,
              help="fixed: every request at the spec's lengths; uniform: drawn around them (same means).")
@click.option("--trace", type=click.Path(path_type=Path), default=None,
              help="CSV of arrival_s,input_tokens,output_tokens to replay instead of Poisson arrivals.")
@FORMAT
@price_options
@click.pass_context
def simulate(ctx: click.Context, spec_path: Path, requests: int, seed: int, lengths: str, trace: Path | None, fmt: str,
             prices: tuple[Path, ...], price_scenario: Path | None, **config) -> None:
    """Replay SPEC request by request on the engine (iteration-level simulation) beside the closed form.

    With configuration flags it simulates that configuration; without them, the plan `planner solve` picks."""
    from planner.evaluate import resolve_workload
    from planner.report import to_json
    from planner.simulate.run import simulate_parts
    from planner.spec import load_spec

    spec = load_spec(spec_path)
    catalog_data = _catalog(ctx, prices, price_scenario)
    work = resolve_workload(spec, catalog_data, str(spec_path))
    if work.kind != "serving":
        raise click.UsageError(f"{spec_path} is a {work.kind} spec: `planner simulate` replays LLM serving")
    demand = spec.workload.traffic.requests_per_s
    if config["device"] is not None:
        from planner.estimate import estimate_configuration

        ev, _ = estimate_configuration(spec, catalog_data, spec_file=str(spec_path), **config)
        parts = [(ev, demand)]
    else:
        from planner.solve import SolverSettings
        from planner.solve import solve as run_solve

        result = run_solve(work, catalog_data, SolverSettings(time_limit_s=30.0))
        if result.plan is None:
            click.echo(f"error: no plan to simulate (solve status {result.status}); fix the spec or pass --device",
                       err=True)
            sys.exit(EXIT_INFEASIBLE if result.status == "infeasible" else EXIT_TIMEOUT)
        parts = [(p.evaluation, demand * p.load_share) for p in result.plan.parts]
    sims = simulate_parts(work, catalog_data, parts, requests=requests, seed=seed, lengths=lengths, trace=trace)
    if fmt == "json":
        click.echo(to_json({"spec": spec.name, "parts": [s.as_dict() for s in sims]}))
        return
    from planner.report import render_simulation

    render_simulation(spec.name, sims)


@main.command()
@click.argument("spec_path", type=click.Path(path_type=Path))
@click.option("--objective", type=click.Choice(["cost", "energy", "carbon"]), default=None,
              help="Override the spec's objective.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "yaml", "markdown", "html"]), default="table",
              show_default=True)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=None,
              help="Write the report (json, yaml, markdown or html) to this file instead of standard output.")
@click.option("--top", type=click.IntRange(min=1, max=50), default=1, show_default=True,
              help="List the K best distinct plans.")
@click.option("--time-limit", type=click.FloatRange(min=0.1), default=30.0, show_default=True, callback=_finite,
              help="Seconds the whole command may take (enumeration, solve, explanation); what is left out "
                   "when it runs out is named.")
@click.option("--allow-mix", is_flag=True, help="Let a serving fleet mix device types (same as search.allow_mix).")
@click.option("--reproducible", is_flag=True, help="One solver worker and a fixed seed.")
@click.option("--workers", type=click.IntRange(min=1, max=64), default=None, help="Solver workers (default 8).")
@click.option("--no-explain", is_flag=True, help="Skip the explanation (binding limits, why not, conflicts).")
@click.option("--simulate", "simulate_plan", is_flag=True,
              help="Serving: re-check the chosen plan's SLOs by simulation (2,000 requests) and report both.")
@click.option("--emit", "emit_dir", type=click.Path(path_type=Path), default=None,
              help="Write the chosen plan's launch configuration (engine or framework command, Kubernetes, "
                   "SkyPilot, SLURM, README) into this directory.")
@price_options
@click.pass_context
def solve(ctx: click.Context, spec_path: Path, objective: str | None, fmt: str, output: Path | None, top: int,
          time_limit: float, allow_mix: bool, reproducible: bool, workers: int | None, no_explain: bool,
          simulate_plan: bool, emit_dir: Path | None, prices: tuple[Path, ...], price_scenario: Path | None) -> None:
    """Find the plan for SPEC that minimises its objective within every limit, proven optimal.

    \b
    Exit codes: 0 plan found, 2 bad input, 3 infeasible, 4 no plan within the time limit.
    """
    started = time.monotonic()
    from planner import api
    from planner.report import render_markdown, render_result, to_json
    from planner.spec import load_spec

    if emit_dir is not None:
        from planner.launch.emit import check_directory

        check_directory(emit_dir)  # before any work: a bad target should not cost a solve
    _check_output(output, fmt)
    kind = _kind(spec_path)
    if kind == "fleet":
        raise click.UsageError(f"{spec_path} is a fleet file: plan it with `planner compare {spec_path}`")
    if kind == "tier":
        raise click.UsageError(f"{spec_path} is a tier spec: plan it with `planner tier {spec_path}`")
    spec = load_spec(spec_path)
    catalog_data = _catalog(ctx, prices, price_scenario)
    spec = _with_price_providers(ctx, spec)
    report = api.solve(spec, name=str(spec_path), catalog=catalog_data, objective=objective, top=top,
                       time_limit_s=time_limit, workers=workers, reproducible=reproducible, explain=not no_explain,
                       allow_mix=allow_mix, simulate=simulate_plan, started=started)
    result, checks, explanation, work, sims = (report.result, report.checks, report.explanation, report.work,
                                               report.simulations)
    if emit_dir is not None and result.plan is not None:
        from planner.launch.request import request_of  # its schema is only built for a launch

        _emit(request_of(report.to_dict(), str(spec_path)), catalog_data, emit_dir, str(spec_path))
    if fmt in ("json", "yaml", "html"):
        data = report.to_dict()
        if fmt == "json":
            _write(output, to_json(data))
        elif fmt == "html":
            _write(output, report.to_html(_spec_text(spec_path)))
        else:
            import yaml

            _write(output, yaml.safe_dump(json.loads(to_json(data)), sort_keys=False).rstrip())
    elif fmt == "markdown":
        text = render_markdown(result, checks, work)
        if explanation is not None:
            from planner.explain.render import markdown

            text += "\n\n" + markdown(explanation)
        if sims:
            text += "\n\n## Simulation of the chosen plan\n\n" + "\n".join(
                f"- {v['id']} <= {v['limit_ms']:g} ms: simulated {v['simulated_ms']:.1f} ms "
                f"({'holds' if v['simulated_ok'] else 'broken'}), closed form {v['closed_form_ms']:.1f} ms"
                for sim in sims for v in sim.slo)
        _write(output, text)
    else:
        render_result(result, checks, work)
        if explanation is not None:
            from planner.explain.render import render

            render(explanation)
        if sims:
            from planner.report import render_simulation

            click.echo("\nSimulation of the chosen plan:")
            render_simulation(spec.name, sims)
    if result.status == "infeasible":
        sys.exit(EXIT_INFEASIBLE)
    if result.status == "timeout":
        sys.exit(EXIT_TIMEOUT)


def _check_output(output: Path | None, fmt: str) -> None:
    """An output file is checked before any work: a typo should not cost a solve."""
    if output is None:
        return
    from planner.errors import Problem, SolveError

    if fmt == "table":
        raise click.UsageError("-o writes a file: give --format json, yaml, markdown or html")
    if output.is_dir():
        raise SolveError(Problem("is a folder", file=str(output), fix="give a file name, e.g. report.html"))
    if not output.parent.is_dir():
        raise SolveError(Problem("its folder does not exist", file=str(output), fix="create the folder first"))


def _write(output: Path | None, text: str) -> None:
    if output is None:
        click.echo(text)
    else:
        output.write_text(text if text.endswith("\n") else text + "\n")
        click.echo(f"report written to {output}", err=True)


def _spec_text(spec_path: Path) -> str | None:
    try:
        return spec_path.read_text() if str(spec_path) != "-" else None
    except (OSError, UnicodeDecodeError):
        return None


def _emit(request, catalog_data, out_dir: Path, source: str) -> None:
    from planner.launch.emit import emit as write_launch

    done = write_launch(request, catalog_data, out_dir, source)
    click.echo(f"launch configuration: {len(done.files)} files written to {out_dir}/ (see {out_dir}/README.md)",
               err=True)
    for warning in done.warnings:
        click.echo(f"warning: {warning}", err=True)


@main.command()
@click.argument("result_path", type=click.Path(path_type=Path))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.pass_context
def emit(ctx: click.Context, result_path: Path, out_dir: Path) -> None:
    """Write the launch configuration of a solve result (RESULT from `planner solve SPEC --format json`, or
    `-` for stdin) into OUT_DIR: the engine's or framework's command, Kubernetes, SkyPilot, SLURM, README."""
    from planner.launch.emit import check_directory
    from planner.launch.request import read_request

    check_directory(out_dir)
    _emit(read_request(result_path), _catalog(ctx), out_dir, str(result_path))


@main.command()
@click.argument("spec_paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "markdown", "json", "html"]), default="table",
              show_default=True)
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=None,
              help="Write the html report to this file instead of standard output.")
@click.option("--pareto", default=None, help="cost,latency | cost,tpot (serving) or cost,time (training).")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Draw the Pareto front to a PNG.")
@click.option("--time-limit", type=click.FloatRange(min=0.1), default=30.0, show_default=True, callback=_finite)
@click.option("--no-explain", is_flag=True, help="Fleets: skip the explanation (binding limits, why not, conflicts).")
@price_options
@click.pass_context
def compare(ctx: click.Context, spec_paths: tuple[Path, ...], fmt: str, output: Path | None, pareto: str | None,
            plot: Path | None, time_limit: float, no_explain: bool, prices: tuple[Path, ...],
            price_scenario: Path | None) -> None:
    """Price each SPEC on every device type and provider side by side, or trace its Pareto front.

    A fleet file (with `fleet:`) plans its workloads together over a horizon, renting or buying at the
    lowest total cost of ownership, and prices the rent-only alternative.
    """
    started = time.monotonic()
    from planner.evaluate import resolve_workload
    from planner.report import to_json
    from planner.solve import SolverSettings
    from planner.spec import load_spec

    if output is not None and fmt != "html":
        raise click.UsageError("-o writes the html report: give --format html")
    _check_output(output, fmt)
    if plot:
        from planner.pareto import check_plot_path

        if not pareto:
            raise click.UsageError("--plot draws a Pareto front: give --pareto too")
        check_plot_path(plot)
    catalog_data = _catalog(ctx, prices, price_scenario)
    settings = SolverSettings.for_command(time_limit, started=started)
    from planner.fleet import rent_or_buy

    fleets = [p for p in spec_paths if _kind(p) == "fleet"]
    if fleets:
        from planner.report import render_fleet

        if len(spec_paths) != 1 or pareto:
            raise click.UsageError("a fleet file is compared on its own (its workloads are listed inside it)")
        result = rent_or_buy(fleets[0], catalog_data, settings, explain=not no_explain)
        if fmt == "html":
            from planner.html.others import fleet_page
            from planner.report import fleet_dict

            _write(output, fleet_page(json.loads(to_json(fleet_dict(result, catalog_data))),
                                      f"planner fleet: {fleets[0].name}"))
        else:
            render_fleet(result, catalog_data, "json" if fmt == "json" else "markdown")
        if result.buy.status == "infeasible":
            sys.exit(EXIT_INFEASIBLE)
        return
    works = [resolve_workload(load_spec(p), catalog_data, str(p)) for p in spec_paths]
    if pareto:
        from planner.report import render_pareto

        if len(works) != 1:
            raise click.UsageError("--pareto takes one spec")
        render_pareto(works[0], catalog_data, pareto, settings, fmt, plot, output)
        return
    from planner.compare import compare as run_compare
    from planner.report import render_compare

    rows = [row for work in works for row in run_compare(work, catalog_data, settings)]
    if fmt == "html":
        from planner.html.others import compare_page
        from planner.report import compare_dicts

        _write(output, compare_page(compare_dicts(rows), "planner compare: " + ", ".join(w.spec.name for w in works)))
        return
    render_compare(rows, fmt)


@main.command()
@click.argument("runs_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), required=True,
              help="Where to write the calibration overlay (YAML) that --calibration reads.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def calibrate(ctx: click.Context, runs_path: Path, output: Path, fmt: str) -> None:
    """Fit family and engine parameters to your own measured runs (RUNS: configurations as `estimate` takes
    them and what was measured), report the error before, after and leave-one-out, and write the overlay."""
    import yaml

    from planner.calibrate.fit import calibrate as fit_runs
    from planner.calibrate.fit import overlay_dict
    from planner.calibrate.runs import load_runs
    from planner.errors import CalibrationError, Problem

    if output.exists() and output.is_dir():
        raise CalibrationError(Problem("is a directory", file=str(output), fix="give a file name for the overlay"))
    if not output.parent.is_dir():
        raise CalibrationError(Problem("its folder does not exist", file=str(output), fix="create it first"))
    fit = fit_runs(load_runs(runs_path), runs_path, _catalog(ctx))
    overlay = overlay_dict(fit, runs_path.name)
    output.write_text("# planner calibration overlay: apply with --calibration " + output.name + "\n"
                      + yaml.safe_dump(overlay, sort_keys=False))
    if fmt == "json":
        click.echo(json.dumps(overlay | {"rows": fit.rows}, indent=2))
        return
    from planner.report import render_rows

    render_rows("Calibration: predicted vs measured (signed error, %)",
                ["run", "measure", "measured", "before", "after", "left out"],
                [[r["run"], r["measure"], f"{r['measured']:g}", f"{r['before_pct']:+.1f}", f"{r['after_pct']:+.1f}",
                  f"{r['leave_one_out_pct']:+.1f}"] for r in fit.rows])
    for name in ("before", "after", "leave_one_out"):
        e = overlay[name]
        click.echo(f"{name.replace('_', ' '):>14}: median {e['median_abs_pct']:.1f}%, p90 {e['p90_abs_pct']:.1f}%, "
                   f"bias {e['bias_pct']:+.1f}% over {e['figures']} figures")
    for (scope, target, name), value in sorted(fit.params.items()):
        click.echo(f"fitted {scope} {target}.{name} = {value:.4g}")
    click.echo(f"calibration overlay written to {output}")


@main.command()
@click.argument("sweep_path", type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", type=click.Path(path_type=Path), default=None,
              help="Results folder (Parquet parts; a rerun resumes it). Default: SWEEP's name + '.results'.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool on this machine; ray: tasks on a Ray cluster.")
@click.option("--address", default=None, help="Ray cluster address (default: start a local one).")
@click.option("--workers", type=click.IntRange(min=1, max=1024), default=None,
              help="Local processes (default: one per core).")
@click.option("--summarize", "summarize", is_flag=True, help="SWEEP_PATH is a results folder: print its summary.")
@click.option("--plot", type=click.Path(path_type=Path), default=None,
              help="With --summarize: a heatmap PNG of the winning device over --x and --y.")
@click.option("--x", "x_axis", default=None, help="Heatmap axis (an axis path of the sweep).")
@click.option("--y", "y_axis", default=None, help="Heatmap axis (an axis path of the sweep).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True,
              help="With --summarize: json or an html page (-o FILE writes it to a file).")
@click.pass_context
def sweep(ctx: click.Context, sweep_path: Path, output: Path | None, backend: str, address: str | None,
          workers: int | None, summarize: bool, plot: Path | None, x_axis: str | None, y_axis: str | None,
          fmt: str) -> None:
    """Solve every scenario of SWEEP (a base spec and axes to vary) and stream one Parquet row per scenario;
    with --summarize, read a results folder: best plan per scenario, where the answer flips and why."""
    from planner.errors import Problem, SweepError

    if summarize:
        from planner.sweep.summary import decider
        from planner.sweep.summary import answer, axes_of, flips, heatmap, read_results

        if plot is not None and (x_axis is None or y_axis is None or plot.suffix.lower() != ".png"
                                 or not plot.parent.is_dir()):
            raise SweepError(Problem("--plot needs --x and --y and a .png path in an existing folder",
                                     file=str(plot), fix="e.g. --plot heat.png --x AXIS --y AXIS"))
        rows = read_results(sweep_path)
        changes = flips(rows)
        if plot is not None:
            heatmap(rows, x_axis, y_axis, plot)
        if fmt == "json":
            _write(output, json.dumps({"scenarios": rows, "flips": changes}, indent=2, default=str))
        elif fmt == "html":
            from planner.html.others import sweep_page

            _write(output, sweep_page(rows, changes, f"planner sweep: {sweep_path.name}"))
        else:
            from planner.report import render_rows

            axes = axes_of(rows)
            render_rows(f"Sweep: {len(rows)} scenarios", axes + ["plan", "objective", "deciding limits"],
                        [[r[f"axis:{a}"] for a in axes] + [answer(r), r["objective_value"], decider(r)] for r in rows])
            for f in changes:
                held = ", ".join(f"{k}={v}" for k, v in f["held"].items())
                click.echo(f"{f['axis']} {f['from']} -> {f['to']}{' (' + held + ')' if held else ''}: "
                           f"{f['answer_before']} -> {f['answer_after']}; deciding before: {f['tight_before'] or '-'}, "
                           f"after: {f['tight_after'] or '-'}")
        if plot is not None:
            click.echo(f"heatmap written to {plot}", err=True)
        return
    from planner.sweep.run import run_sweep
    from planner.sweep.spec import load_sweep

    plan = load_sweep(sweep_path)
    results = output or sweep_path.with_suffix(".results")
    started = time.monotonic()
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("sweep"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), transient=True, console=_stderr_console()) as bar:
        task = bar.add_task("sweep", total=len(plan.scenarios))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=len(plan.scenarios) - total + done)

        ran, skipped = run_sweep(plan, results, backend=backend, workers=workers, address=address, progress=progress)
    click.echo(f"{ran} scenarios solved, {skipped} already in {results}/ ({time.monotonic() - started:.1f} s); "
               f"`planner sweep --summarize {results}` reads them", err=True)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


@main.group()
def catalog() -> None:
    """Browse the shipped catalogs."""


@catalog.command("list")
@click.argument("what", type=click.Choice(["devices", "systems", "models", "prices", "edge", "engines", "frameworks"]),
                default="devices")
@click.option("--device", default=None, help="Only rows of this device (an id, or a prefix such as h100).")
@click.option("--provider", default=None, help="Only this provider's offerings (prices).")
@click.option("--region", default=None, help="Only this region's offerings (prices).")
@FORMAT
@click.pass_context
def catalog_list(ctx: click.Context, what: str, device: str | None, provider: str | None, region: str | None,
                 fmt: str) -> None:
    """List devices, systems, models, prices, edge devices (one row per power mode), serving engines or
    training frameworks; `prices --device h100 --provider aws --region us-east-1` narrows the list."""
    from planner.report import catalog_rows, filter_catalog_rows, render_rows

    catalog = _catalog(ctx)
    cols, rows = filter_catalog_rows(catalog, what, *catalog_rows(catalog, what), device=device, provider=provider,
                                     region=region)
    if fmt == "json":
        click.echo(json.dumps([dict(zip(cols, r)) for r in rows], indent=2, default=str))
    else:
        render_rows(what, cols, rows)


@catalog.command("show")
@click.argument("name")
@FORMAT
@click.pass_context
def catalog_show(ctx: click.Context, name: str, fmt: str) -> None:
    """Show one device, system, model or instance type with its sources."""
    from planner.catalog.show import find_entry

    cat = _catalog(ctx)
    data = find_entry(cat, name)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        import yaml

        click.echo(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip())


if __name__ == "__main__":  # pragma: no cover
    main()
