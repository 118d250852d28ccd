"""`deskcorder serve`: run the collector that agents upload to."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from ..store import MAX_CLOCK_SKEW_S
from ._store_options import DATA_DIR_ENV, EVENTS_URL


class LogLevel(str, enum.Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"


def serve(
    data_dir: Path = typer.Option(Path("deskcorder-data"), "--data-dir", envvar=DATA_DIR_ENV,
                                  help="Where event files (events/) and the control database (control.db) go: "
                                       "a store made by `deskcorder init` (or --init)."),
    init: bool = typer.Option(False, "--init", help="Create the store in --data-dir if there is none (as "
                                                    "`deskcorder init`); without it a missing store is an error."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on; 0.0.0.0 for every interface (needs --tls-cert, or "
                                  "--insecure-http: plain http is served only on loopback)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on; 0 picks a free one."),
    log_level: LogLevel = typer.Option(LogLevel.info, "--log-level",
                                       help="Server log level; debug also logs every request."),
    database_url: str | None = typer.Option(None, "--database-url",
                                     help="Control database URL (default: sqlite:///DATA_DIR/control.db)."),
    events_url: str | None = EVENTS_URL,
    retention_interval: float = typer.Option(3600.0, "--retention-interval", min=0,
                                             help="Seconds between retention runs (deleting data older than the "
                                                  "policy's retention_days); 0 turns it off."),
    nats: str | None = typer.Option(None, "--nats", help="Fleet mode: publish batches to this NATS JetStream "
                                    "server (nats://HOST:4222) for `deskcorder writer` to store, instead of "
                                    "storing them here."),
    stream: str = typer.Option("DESKCORDER_BATCHES", "--stream", help="Fleet mode: the JetStream stream name."),
    replicas: int = typer.Option(1, "--replicas", min=1, max=5,
                                 help="Fleet mode: JetStream replicas of the stream, when this process creates it "
                                      "(an existing stream is kept; a different count is logged). Production "
                                      "wants 3 on a 3-node NATS cluster; a single NATS server takes only 1."),
    agent_upload_interval: float | None = typer.Option(
        None, "--agent-upload-interval", min=0.1, max=3600,
        help="Seconds between every agent's uploads, sent to them with their status (default: 60 with --nats, "
             "else each agent's own, 0.5 s): fewer, larger batches cost far less per event."),
    agent_status_interval: float | None = typer.Option(
        None, "--agent-status-interval", min=0.1, max=60,
        help="Seconds between every agent's status polls (default: 10 with --nats, else each agent's own, "
             "0.5 s): how long a withdrawal of consent may take to stop recording at the desk. Events after it "
             "are refused here whatever this says."),
    device_rate: float = typer.Option(20.0, "--device-rate", min=0,
                                      help="Batches per second each device may send (more get 429); 0: no limit."),
    device_burst: int = typer.Option(40, "--device-burst", min=1,
                                     help="Batches a device may send at once before --device-rate applies."),
    tls_cert: Path | None = typer.Option(None, "--tls-cert",
                                         help="Serve https with this PEM certificate (chain); agents then use "
                                              "--server https://..."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="The private key (PEM) of --tls-cert, unless the "
                                        "certificate file holds it."),
    insecure_http: bool = typer.Option(False, "--insecure-http",
                                       help="Serve plain http on a non-loopback --host (credentials and typed "
                                            "text in clear text): only for a trusted network, e.g. behind a TLS "
                                            "proxy on another machine. Portal cookies stay Secure."),
    max_clock_skew: float = typer.Option(MAX_CLOCK_SKEW_S, "--max-clock-skew", min=0, max=604800,
                                         help="Refuse (422) a batch with an event stamped more than this many "
                                              "seconds ahead of this machine's clock; retention deletes what is "
                                              "dated beyond it."),
) -> None:
    """Run the collector: accept event batches over HTTP and store them in DATA_DIR.

    Prints "deskcorder collector listening on http://HOST:PORT" once it accepts connections.
    """
    from ..collect import AgentCadence, run_server
    from ..store import StoreError

    make_cadence = AgentCadence.fleet_default if nats else AgentCadence
    try:
        run_server(data_dir, host, port, log_level=log_level.value, database_url=database_url,
                   events_url=events_url, retention_interval_s=retention_interval or None, nats_url=nats, stream=stream,
                   replicas=replicas, device_rate_per_s=device_rate, device_burst=device_burst,
                   cadence=make_cadence(agent_upload_interval, agent_status_interval),
                   tls_cert=tls_cert, tls_key=tls_key, insecure_http=insecure_http, create=init,
                   max_clock_skew_s=max_clock_skew)
    except ValueError as exc:  # the transport (check_transport); typer has checked every other value
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}; "
                   f"pick another --port (0 picks a free one)", err=True)
        raise typer.Exit(2) from exc
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
