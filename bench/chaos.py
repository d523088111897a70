#!/usr/bin/env python3
"""Chaos run: N checks through the whole stack while its parts fail, and nothing is lost.

The stack is real: Redis (AOF on), the nanio S3-compatible server, ``--workers`` ``synthspot
worker`` processes, ``--deliverers`` ``synthspot deliver`` processes and a signature-verifying
HTTP receiver (tests/receiver.py) standing in for the platform. A submitter thread plays the
platform: it uploads nothing during the run (images are uploaded first) and calls
``synthspot.worker.submit.send`` in chunks, keeping at most ``--backlog`` checks without a
verdict, so that checks are queued, fetched, batched and delivered while every fault happens.

Faults, each triggered by progress (the share of checks with a stored verdict), one after the
other, each logged with its time and the evidence that it hit work in flight:

* ``kill``: worker 1 gets SIGKILL while it has checks in flight (its ``synthspot_inflight_tasks``
  gauge > 0; the checks it had received and not finished are read from its log), and a
  replacement worker is started. Tests late acks + kombu's restore of unacknowledged messages
  after the visibility timeout, and the reconciler for a message popped but not yet recorded.
* ``redis``: Redis is restarted (SIGTERM, ``--redis-down`` seconds down, started again on the
  same AOF) while checks are pending. Tests AOF durability of verdicts, outbox and pending
  records, redis-py's reconnects in workers and deliverers, Celery's consumer reconnect (every
  live worker must store verdicts after the restart).
* ``receiver``: the receiver answers 500 for half of ``--receiver-window`` seconds, then answers
  only after the sender's timeout for the other half. Tests outbox retries and leases;
  late answers produce duplicates that the ``webhook-id`` makes harmless.
* ``s3``: the S3 server is stopped for ``--s3-window`` seconds while checks are being fetched.
  Tests that a store outage is a transient failure (retried with backoff), never an error
  verdict.

At the end (everything delivered, or ``--deadline``) the receiver's log is the ground truth:
``accepted`` = task ids with a verdict answered 2xx, ``deliveries`` = raw POSTs (failures and
duplicates included), ``duplicates`` = 2xx POSTs beyond the first per ``webhook-id``, ``lost`` =
submitted ids never accepted, ``conflicting`` = ids whose accepted verdicts differ from each
other or from the one stored in Redis. Dead letters (none expected: the retry schedule outlasts
the receiver's window) are replayed and counted. The last line is one JSON object.

    python bench/chaos.py --tasks 10000
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the real-service runners shared with the test suite

from helpers import encode, free_port, photo  # noqa: E402
from receiver import DelivererProcess, Receiver, Reply  # noqa: E402
from services import RedisServer, S3Server, WorkerProcess, metric_value  # noqa: E402

BUCKET = "chaos"
ENDPOINT = "/platform"
FAULTS = ("kill", "redis", "receiver", "s3")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=10_000, help="checks to submit (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="scoring worker processes (default: %(default)s)")
    p.add_argument("--deliverers", type=int, default=2, help="`synthspot deliver` processes (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: %(default)s)")
    p.add_argument("--backlog", type=int, default=300,
                   help="at most this many submitted checks without a verdict (default: %(default)s)")
    p.add_argument("--chunk", type=int, default=50, help="checks per send() call (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=40, help="side of the uploaded images (default: %(default)s)")
    p.add_argument("--crop", type=int, default=32, help="the weights' center crop (default: %(default)s)")
    p.add_argument("--weights", default=None,
                   help="weights file (default: a random ResNet-50 whose entry asks for a --crop center crop)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--torch-threads", type=int, default=1, help="OMP_NUM_THREADS of each worker (default: 1)")
    # compressed production timings
    p.add_argument("--visibility-timeout", type=int, default=15, help="SYNTHSPOT_VISIBILITY_TIMEOUT_S")
    p.add_argument("--reconcile-after", type=int, default=30, help="SYNTHSPOT_RECONCILE_AFTER_S")
    p.add_argument("--reconcile-interval", type=float, default=2.0, help="SYNTHSPOT_RECONCILE_INTERVAL_S")
    p.add_argument("--delivery-timeout", type=float, default=1.0, help="the webhook integration's timeout_s")
    p.add_argument("--lease", type=int, default=8, help="SYNTHSPOT_DELIVERY_LEASE_S")
    # the faults
    p.add_argument("--kill-at", type=float, default=0.2, help="progress at which worker 1 is killed")
    p.add_argument("--redis-at", type=float, default=0.4, help="progress at which Redis is restarted")
    p.add_argument("--receiver-at", type=float, default=0.5, help="progress at which the receiver starts failing")
    p.add_argument("--s3-at", type=float, default=0.6, help="progress at which S3 is stopped")
    p.add_argument("--redis-down", type=float, default=2.0, help="seconds Redis stays down")
    p.add_argument("--receiver-window", type=float, default=20.0,
                   help="seconds the receiver fails: 500s, then answers after the sender's timeout")
    p.add_argument("--s3-window", type=float, default=15.0, help="seconds the S3 server is stopped")
    p.add_argument("--no-faults", action="store_true", help="the same run without any fault (a baseline)")
    p.add_argument("--deadline", type=float, default=3600.0,
                   help="seconds after the start to give up waiting for deliveries (default: %(default)s)")
    p.add_argument("--workdir", type=Path, default=None, help="keep data and logs here (default: a temp dir)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


# --- small helpers ---------------------------------------------------------------------------------

class Clock:
    def __init__(self, quiet: bool = False) -> None:
        self.t0 = time.monotonic()
        self.quiet = quiet

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def say(self, msg: str, force: bool = False) -> None:
        if force or not self.quiet:
            print(f"[{self.now():8.2f}s] {msg}", file=sys.stderr, flush=True)


def scrape(port: int, timeout: float = 2.0) -> str | None:
    """The ``/metrics`` page of a process; None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            return r.read().decode()
    except OSError:
        return None


def metric(page: str | None, name: str, **labels: str) -> float:
    """A sample of a scraped page (summed over other labels); 0 for a process that did not answer."""
    return metric_value(page, name, **labels) if page is not None else 0.0


def write_weights(path: Path, crop: int) -> None:
    """A deterministic random ResNet-50 whose weights entry asks for a small center crop (cheap on CPU)."""
    import torch

    from synthspot.detector.models import create_model

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in create_model("resnet50").state_dict().items()}
    torch.save({"model": state, "synthspot": {"weights_cfg": {
        "arch": "resnet50", "crop_size": crop, "policy": "center", "upsize_small_to": None, "threshold": 0.5,
        "notes": "chaos run: random weights, verdict content irrelevant, consistency checked"}}}, path)


def read_log(path: Path) -> list[dict[str, Any]]:
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


_CELERY_EVENT = re.compile(r"^Task synthspot\.check\[([^\]]+)\] (received|succeeded|retry|raised|failed|rejected)")


def unfinished_checks(records: list[dict[str, Any]]) -> set[str]:
    """Task ids a worker received (per Celery's own log lines) and had not finished or handed back."""
    state: dict[str, str] = {}
    for r in records:
        m = _CELERY_EVENT.match(str(r.get("msg", "")))
        if m:
            state[m.group(1)] = m.group(2)
    return {cid.rsplit(".", 1)[0] for cid, s in state.items() if s == "received"}


# --- the run -----------------------------------------------------------------------------------------

class Submitter(threading.Thread):
    """The platform: sends checks in chunks, keeping at most ``backlog`` without a verdict."""

    def __init__(self, app: Any, checks: list[Any], backlog: int, chunk: int, verdicts: Any, clock: Clock) -> None:
        super().__init__(name="chaos-submitter", daemon=True)
        self.app, self.checks, self.backlog, self.chunk = app, checks, backlog, chunk
        self.verdicts = verdicts  # callable: current number of stored verdicts
        self.clock = clock
        self.sent = 0
        self.errors = 0
        self.stop = threading.Event()
        self.done_at: float | None = None

    def run(self) -> None:
        from synthspot.worker.submit import send

        while self.sent < len(self.checks) and not self.stop.is_set():
            room = self.backlog - (self.sent - self.verdicts())
            if room < min(self.chunk, len(self.checks) - self.sent):
                time.sleep(0.05)
                continue
            part = self.checks[self.sent:self.sent + self.chunk]
            try:
                send(part, app=self.app)  # pending records then messages: idempotent, safe to repeat
            except Exception as exc:  # noqa: BLE001 - Redis away: a platform sends the same checks again
                self.errors += 1
                self.clock.say(f"submit failed ({type(exc).__name__}); sending the chunk again")
                time.sleep(0.5)
                continue
            self.sent += len(part)
        self.done_at = self.clock.now()


def main(args: argparse.Namespace) -> dict[str, Any]:
    from synthspot.integrations.signing import generate_secret
    from synthspot.integrations.webhook import message_id
    from synthspot.worker.app import create_app
    from synthspot.worker.outbox import Outbox
    from synthspot.worker.redisconn import connect
    from synthspot.worker.settings import Settings
    from synthspot.worker.store import Keys
    from synthspot.worker.submit import make_check

    clock = Clock(args.quiet)
    tmp_ctx = tempfile.TemporaryDirectory(prefix="synthspot-chaos-") if args.workdir is None else None
    tmp = Path(tmp_ctx.name) if tmp_ctx else args.workdir
    tmp.mkdir(parents=True, exist_ok=True)
    procs: dict[str, Any] = {}
    receiver: Receiver | None = None
    redis = s3 = None
    try:
        # --- setup: weights, services, images --------------------------------------------------------
        weights = args.weights
        if weights is None:
            weights = str(tmp / "chaos-resnet50.pth")
            write_weights(Path(weights), args.crop)
        redis = RedisServer(tmp / "redis").start()
        s3 = S3Server(tmp / "s3").start()
        client = s3.client()
        client.create_bucket(Bucket=BUCKET)
        task_ids = [f"chaos-{i:06d}" for i in range(args.tasks)]

        def upload(i: int) -> None:
            body = encode(photo(args.image_size, args.image_size, seed=i), "PNG")
            client.put_object(Bucket=BUCKET, Key=f"img/{i:06d}.png", Body=body)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(upload, range(args.tasks)))
        clock.say(f"uploaded {args.tasks} images of {args.image_size}px")

        receiver = Receiver()
        secret = generate_secret()
        url = receiver.endpoint(ENDPOINT, [secret])
        window = 0.0 if args.no_faults else args.receiver_window
        # enough attempts to outlast the receiver's failure window twice over: nothing should dead-letter
        schedule = [0, 0.5, 1] + [2] * max(7, int(window) + 5)
        integrations = [{"name": "platform", "type": "webhook", "url": url, "secrets": [secret],
                         "timeout_s": args.delivery_timeout}]
        env = {"SYNTHSPOT_REDIS_URL": redis.url, **s3.env(), "SYNTHSPOT_WEIGHTS": weights,
               "SYNTHSPOT_DEVICE": args.device, "SYNTHSPOT_STATE_DIR": str(tmp / "state"),
               "SYNTHSPOT_BATCH_SIZE": str(args.batch_size), "SYNTHSPOT_BATCH_WAIT_MS": "20",
               "SYNTHSPOT_MIN_IMAGE_SIDE": str(min(16, args.image_size)),
               "SYNTHSPOT_S3_ALLOWED_BUCKETS": BUCKET, "SYNTHSPOT_S3_MAX_ATTEMPTS": "2",
               "SYNTHSPOT_S3_CONNECT_TIMEOUT_S": "2", "SYNTHSPOT_S3_READ_TIMEOUT_S": "5",
               "SYNTHSPOT_VISIBILITY_TIMEOUT_S": str(args.visibility_timeout),
               "SYNTHSPOT_RECONCILE_AFTER_S": str(args.reconcile_after),
               "SYNTHSPOT_RECONCILE_INTERVAL_S": str(args.reconcile_interval),
               "SYNTHSPOT_RETRY_BACKOFF_MAX_S": "2", "SYNTHSPOT_SOFT_SHUTDOWN_TIMEOUT_S": "2",
               "SYNTHSPOT_INTEGRATIONS": json.dumps(integrations), "SYNTHSPOT_RETRY_SCHEDULE_S": json.dumps(schedule),
               "SYNTHSPOT_DELIVERY_LEASE_S": str(args.lease), "SYNTHSPOT_DELIVERY_CONCURRENCY": "8",
               "SYNTHSPOT_METRICS_HOST": "127.0.0.1", "SYNTHSPOT_LOG_LEVEL": "INFO",
               "OMP_NUM_THREADS": str(args.torch_threads), "MKL_NUM_THREADS": str(args.torch_threads)}
        settings = Settings(**{k[len("SYNTHSPOT_"):].lower(): json.loads(v) if v.startswith("[") else v
                               for k, v in env.items() if k.startswith("SYNTHSPOT_")})
        app = create_app(settings)

        def start_worker(name: str) -> WorkerProcess:
            w = WorkerProcess({**env, "SYNTHSPOT_METRICS_PORT": str(free_port())}, tmp / f"{name}.log", name)
            procs[name] = w.start()
            return w

        workers = [start_worker(f"w{i + 1}") for i in range(args.workers)]
        deliverers = []
        for i in range(args.deliverers):
            d = DelivererProcess({**env, "SYNTHSPOT_DELIVER_METRICS_PORT": str(free_port())}, tmp / f"d{i + 1}.log")
            procs[f"d{i + 1}"] = d.start()
            deliverers.append(d)
        for w in workers:
            w.wait_ready(timeout=600)
        for d in deliverers:
            d.wait_ready(timeout=120)
        clock.say(f"{len(workers)} workers and {len(deliverers)} deliverers ready")

        # --- the run ------------------------------------------------------------------------------------
        r = connect(redis.url)
        outbox = Outbox(r, schedule=schedule, lease_s=args.lease)
        state = {"verdicts": 0}
        checks = [make_check(f"s3://{BUCKET}/img/{i:06d}.png", task_id=t, metadata={"run": "chaos"})
                  for i, t in enumerate(task_ids)]
        clock = Clock(args.quiet)  # wall time starts with the first submission
        submitter = Submitter(app, checks, args.backlog, args.chunk, lambda: state["verdicts"], clock)
        submitter.start()

        def port(w: WorkerProcess) -> int:
            return int(w.env["SYNTHSPOT_METRICS_PORT"])

        def live_workers() -> list[WorkerProcess]:
            return [w for w in workers if w.proc and w.proc.poll() is None]

        faults: dict[str, dict[str, Any]] = {}
        todo = [] if args.no_faults else list(FAULTS)
        at = {"kill": args.kill_at, "redis": args.redis_at, "receiver": args.receiver_at, "s3": args.s3_at}
        replayed = 0
        dead_seen = 0
        next_report = 0.0
        accepted_ids: set[str] = set()
        seen_requests = 0
        unanswered: list[Any] = []
        wanted = set(task_ids)
        deadline = time.monotonic() + args.deadline
        finished = False

        while time.monotonic() < deadline:
            try:
                state["verdicts"] = int(r.zcard(Keys.verdicts))
                outbox_size, dead = outbox.sizes()
            except Exception as exc:  # noqa: BLE001 - the driver rides out the restart like everyone else
                clock.say(f"driver: redis unavailable ({type(exc).__name__})")
                time.sleep(0.5)
                continue
            progress = state["verdicts"] / args.tasks
            reqs = receiver.requests(ENDPOINT)
            # accepted so far: 2xx answers actually written (a late answer to a sender that hung up is not)
            unanswered += [x for x in reqs[seen_requests:] if 200 <= x.status < 300]
            seen_requests = len(reqs)
            still = []
            for rec in unanswered:
                if rec.answered:
                    accepted_ids.add(rec.json()["data"]["task_id"])
                elif time.time() - rec.at < args.delivery_timeout + 10:
                    still.append(rec)
            unanswered = still

            # --- faults, in order, each when its progress is reached -------------------------------------
            fault = todo[0] if todo else None
            if fault == "kill" and progress >= at["kill"]:
                victim = workers[0]
                sample = scrape(port(victim))
                inflight = metric(sample, "synthspot_inflight_tasks")
                if inflight > 0 or progress >= at["kill"] + 0.15:
                    unfinished = unfinished_checks(read_log(victim.log_path))
                    victim.kill(signal.SIGKILL)
                    victim.proc.wait()
                    faults["kill"] = {"at_s": clock.now(), "progress": round(progress, 3), "worker": victim.name,
                                      "inflight": inflight, "unfinished": len(unfinished),
                                      "unfinished_ids": sorted(unfinished),
                                      "scored_before_kill": metric(sample, "synthspot_tasks_total", outcome="scored")}
                    clock.say(f"FAULT kill: SIGKILL {victim.name} with {inflight:.0f} checks in flight, "
                              f"{len(unfinished)} received and unfinished", force=True)
                    replacement = start_worker(f"w{len(workers) + 1}")
                    workers.append(replacement)
                    clock.say(f"started replacement {replacement.name}")
                    todo.pop(0)
            elif fault == "redis" and progress >= at["redis"]:
                pending = int(r.hlen(Keys.pending))
                queued = int(r.llen(settings.queue))
                unacked = int(r.hlen("unacked"))
                before = {w.name: metric(scrape(port(w)), "synthspot_tasks_total", outcome="scored")
                          for w in live_workers()}
                verdicts_before = state["verdicts"]
                t = clock.now()
                redis.restart(down_s=args.redis_down)
                verdicts_after = int(r.zcard(Keys.verdicts))
                faults["redis"] = {"at_s": t, "progress": round(progress, 3), "down_s": args.redis_down,
                                   "pending": pending, "queued": queued, "unacked": unacked,
                                   "verdicts_before": verdicts_before, "verdicts_after_restart": verdicts_after,
                                   "scored_at_restart": before, "back_at_s": clock.now()}
                clock.say(f"FAULT redis: restarted with {pending} checks pending ({queued} queued, {unacked} unacked);"
                          f" verdicts {verdicts_before} before, {verdicts_after} after", force=True)
                todo.pop(0)
            elif fault == "receiver" and progress >= at["receiver"]:
                receiver.script(ENDPOINT, default=Reply(500, body=b"chaos: down"))
                faults["receiver"] = {"at_s": clock.now(), "progress": round(progress, 3),
                                      "window_s": args.receiver_window, "phase": "500",
                                      "requests_before": len(reqs), "_t0": time.monotonic()}
                clock.say(f"FAULT receiver: answering 500 for {args.receiver_window / 2:.1f}s", force=True)
                todo.pop(0)
            elif fault == "s3" and progress >= at["s3"]:
                live = live_workers()
                samples = {w.name: scrape(port(w)) for w in live}
                inflight = sum(metric(s, "synthspot_inflight_tasks") for s in samples.values())
                s3.stop()
                faults["s3"] = {"at_s": clock.now(), "progress": round(progress, 3), "window_s": args.s3_window,
                                "inflight_at_stop": inflight,
                                "store_unavailable_before": {n: metric(s, "synthspot_errors_total", reason="store_unavailable")
                                                             for n, s in samples.items()},
                                "retried_before": {n: metric(s, "synthspot_tasks_total", outcome="retried")
                                                   for n, s in samples.items()},
                                "_t0": time.monotonic()}
                clock.say(f"FAULT s3: stopped with {inflight:.0f} checks in flight", force=True)
                todo.pop(0)

            # windows that end by time
            rf = faults.get("receiver")
            if rf and rf["phase"] != "over":
                elapsed = time.monotonic() - rf["_t0"]
                if rf["phase"] == "500" and elapsed >= args.receiver_window / 2:
                    receiver.script(ENDPOINT, default=Reply(200, delay_s=args.delivery_timeout + 1.0))
                    rf["phase"] = "timeout"
                    rf["timeouts_from_s"] = clock.now()
                    clock.say(f"FAULT receiver: answering after the sender's timeout for "
                              f"{args.receiver_window / 2:.1f}s", force=True)
                elif rf["phase"] == "timeout" and elapsed >= args.receiver_window:
                    receiver.script(ENDPOINT, default=Reply(200))
                    rf["phase"] = "over"
                    rf["ended_at_s"] = clock.now()
                    clock.say("receiver healthy again", force=True)
            sf = faults.get("s3")
            if sf and "restarted_at_s" not in sf and time.monotonic() - sf["_t0"] >= args.s3_window:
                s3.start()
                sf["restarted_at_s"] = clock.now()
                clock.say("S3 server started again", force=True)

            # dead letters (not expected): replay them once the receiver is healthy again, and count them
            if dead and (not rf or rf["phase"] == "over"):
                dead_seen += dead
                replayed += outbox.replay()["replayed"]
                clock.say(f"replayed {dead} dead letters", force=True)

            if clock.now() >= next_report:
                clock.say(f"submitted {submitter.sent}/{args.tasks}, verdicts {state['verdicts']}, "
                          f"accepted {len(accepted_ids)}, deliveries {len(reqs)}, outbox {outbox_size}")
                next_report = clock.now() + 5

            if (not todo and submitter.sent == args.tasks and outbox_size == 0 and not dead
                    and (not rf or rf["phase"] == "over") and (not sf or "restarted_at_s" in sf)
                    and wanted <= accepted_ids):
                finished = True
                break
            time.sleep(0.2)

        wall = clock.now()
        submitter.stop.set()
        time.sleep(1.0)  # answers being written (late duplicates) land in the log

        # --- accounting --------------------------------------------------------------------------------
        final_workers = {w.name: scrape(port(w)) for w in live_workers()}
        final_deliverers = [scrape(int(d.env["SYNTHSPOT_DELIVER_METRICS_PORT"])) for d in deliverers]
        requests = receiver.requests(ENDPOINT)
        accepted: dict[str, list[Any]] = {}
        per_webhook_id: dict[str, int] = {}
        statuses: dict[str, int] = {}
        unverified = 0
        bad_webhook_id = 0
        for rec in requests:
            statuses[str(rec.status)] = statuses.get(str(rec.status), 0) + 1
            if not (rec.verified and rec.verified_sw):
                unverified += 1
            if not (200 <= rec.status < 300 and rec.answered):
                continue
            data = rec.json()["data"]
            if rec.webhook_id != message_id(data["task_id"]):
                bad_webhook_id += 1
            accepted.setdefault(data["task_id"], []).append(data)
            per_webhook_id[rec.webhook_id] = per_webhook_id.get(rec.webhook_id, 0) + 1
        stored: dict[str, Any] = {}
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start:start + 500]
            for t, raw in zip(chunk, r.mget([Keys.verdict(t) for t in chunk])):
                if raw:
                    stored[t] = json.loads(raw)
        canon = lambda d: json.dumps(d, sort_keys=True)  # noqa: E731
        conflicting = sorted(t for t, docs in accepted.items()
                             if len({canon(d) for d in docs} | ({canon(stored[t])} if t in stored else set())) > 1)
        lost = sorted(wanted - set(accepted))
        stored_verdicts = [stored[t] for t in task_ids if t in stored]
        error_verdicts = sum(1 for v in stored_verdicts if v.get("status") != "scored")
        attempts_gt1 = 0
        max_delivery_attempt = 0
        pipe = r.pipeline(transaction=False)
        for t in task_ids:
            pipe.hget(Keys.delivery(f"platform/{t}"), "attempt")
        for raw in pipe.execute():
            n = int(raw or 0)
            attempts_gt1 += n > 1
            max_delivery_attempt = max(max_delivery_attempt, n)

        worker_logs = {w.name: read_log(w.log_path) for w in workers}
        killed = {faults["kill"]["worker"]} if "kill" in faults else set()
        died = sorted(w.name for w in workers if w.proc.poll() is not None and w.name not in killed)
        crashes = sum(1 for recs in worker_logs.values() for x in recs
                      if str(x.get("msg", "")).startswith("Unrecoverable error"))
        resent = sum(1 for recs in worker_logs.values() for x in recs if x.get("msg") == "no verdict in time: check sent again")
        retried_by_reason: dict[str, int] = {}
        for recs in worker_logs.values():
            for x in recs:
                if str(x.get("msg", "")).startswith("transient failure, retrying"):
                    reason = str(x.get("reason"))
                    retried_by_reason[reason] = retried_by_reason.get(reason, 0) + 1
        stored_by_worker = {n: sum(1 for x in recs if x.get("msg") == "verdict stored") for n, recs in worker_logs.items()}

        evidence: dict[str, Any] = {}
        if "kill" in faults:
            k = faults["kill"]
            ids = k.pop("unfinished_ids")
            k["unfinished_recovered"] = sum(1 for t in ids if t in accepted)
            evidence["kill"] = k
        if "redis" in faults:
            f = faults["redis"]
            f["scored_after_restart"] = {n: metric(final_workers.get(n), "synthspot_tasks_total", outcome="scored")
                                         - v for n, v in f["scored_at_restart"].items()}
            evidence["redis"] = f
        if "receiver" in faults:
            f = faults["receiver"]
            f.pop("_t0")
            f["answered_500"] = sum(1 for x in requests[f["requests_before"]:] if x.status == 500)
            f["deliveries_with_attempt_gt1"] = attempts_gt1
            f["max_delivery_attempt"] = max_delivery_attempt
            f["deliverer_retries"] = sum(metric(s, "synthspot_deliveries_total", integration="platform", status="retry")
                                         for s in final_deliverers)
            evidence["receiver"] = f
        if "s3" in faults:
            f = faults["s3"]
            f.pop("_t0")
            f["store_unavailable_during"] = sum(
                metric(final_workers.get(n), "synthspot_errors_total", reason="store_unavailable") - v
                for n, v in f.pop("store_unavailable_before").items())
            f["retried_during"] = sum(metric(final_workers.get(n), "synthspot_tasks_total", outcome="retried") - v
                                      for n, v in f.pop("retried_before").items())
            evidence["s3"] = f
        timeouts = 0
        if "receiver" in faults and "timeouts_from_s" in faults["receiver"]:
            timeouts = sum(1 for recs in (read_log(d.log_path) for d in deliverers) for x in recs
                           if x.get("msg") == "delivery attempt failed; retrying" and "Timeout" in str(x.get("error")))
            evidence["receiver"]["sender_timeouts"] = timeouts

        figures: dict[str, Any] = {
            "submitted": submitter.sent, "accepted": len(accepted), "deliveries": len(requests),
            "duplicates": sum(n - 1 for n in per_webhook_id.values()), "lost": len(lost),
            "conflicting": len(conflicting), "wall_s": wall, "finished": finished,
            "stored_verdicts": len(stored), "error_verdicts": error_verdicts,
            "pending_left": int(r.hlen(Keys.pending)), "outbox_left": outbox.sizes()[0],
            "dead_lettered": dead_seen, "replayed": replayed, "resent": resent,
            "task_retries": retried_by_reason, "submit_errors": submitter.errors,
            "statuses": statuses, "unverified": unverified, "bad_webhook_id": bad_webhook_id,
            "stored_by_worker": stored_by_worker, "workers_died": died, "worker_crashes": crashes, "workers": len(workers), "deliverers": len(deliverers),
            "tasks": args.tasks, "faults": evidence,
        }
        if lost:
            figures["lost_ids"] = lost[:20]
        if conflicting:
            figures["conflicting_ids"] = conflicting[:20]
        clock.say(f"submitted {figures['submitted']}, verdicts accepted {figures['accepted']}, raw deliveries "
                  f"{figures['deliveries']} ({figures['duplicates']} duplicates by webhook-id), lost {figures['lost']}, "
                  f"conflicting {figures['conflicting']}, wall {wall:.1f}s", force=True)
        print(json.dumps(figures), flush=True)
        return figures
    finally:
        for p in procs.values():
            try:
                p.stop(timeout=20)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        if receiver:
            receiver.close()
        if s3:
            s3.stop()
        if redis:
            redis.stop()
        if tmp_ctx:
            tmp_ctx.cleanup()


if __name__ == "__main__":
    main(get_args_parser().parse_args())
