"""`flask` commands: create an admin, load demo data, verify the audit chain, purge expired tokens."""

import os

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from pawmanity import demo
from pawmanity.appointments import reminders
from pawmanity.audit import trail
from pawmanity.conversations import messaging, video
from pawmanity.core.database import utcnow
from pawmanity.core.encryption import fields as field_encryption
from pawmanity.core.encryption import rotation as key_rotation
from pawmanity.core.encryption import tasks as encryption_tasks
from pawmanity.identity import accounts, tokens
from pawmanity.identity.actor import Actor
from pawmanity.privacy import archive, erasure
from pawmanity.sync import retention as sync_retention
from pawmanity.triage import classifier, diagnoses, evaluation
from pawmanity.vitals import readings as vital_readings

CLI_ACTOR = Actor(role="system", ip="cli")


@click.command("create-admin")
@click.argument("email")
@click.option("--name", "full_name", default="Administrator", show_default=True)
def create_admin(email, full_name):
    """Create an admin (or promote an existing account). Idempotent.

    The password comes from PAWMANITY_ADMIN_PASSWORD, or is prompted for.
    """
    password = os.environ.get("PAWMANITY_ADMIN_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    user, created = accounts.ensure_admin(email=email, password=password, full_name=full_name, actor=CLI_ACTOR)
    click.echo(f"{'Created' if created else 'Already present:'} admin {user.email} ({user.id})")


demo_cli = AppGroup("demo", help="Demonstration data.")


@demo_cli.command("load")
@click.option("--force", is_flag=True, help="Load even into a production-configured database.")
def demo_load(force):
    """Load a vet clinic and a human clinic with doctors, owners and patients (idempotent)."""
    if current_app.config["REQUIRE_REAL_SECRETS"] and not force:
        raise click.ClickException("This is a production configuration: demo accounts share a published password "
                                   "and their doctors are verified. Use --force if you really mean it.")
    summary = demo.load(actor=CLI_ACTOR)
    for line in summary + demo.where_to_look(current_app.config["PUBLIC_URL"]):
        click.echo(line)


audit_cli = AppGroup("audit", help="The audit trail.")


@audit_cli.command("verify")
def audit_verify():
    """Walk the hash chain; exit 1 if any row was altered, removed or inserted, or was left unsealed too long."""
    report = trail.verify_chain()
    if report.broken_id is not None:
        click.echo(f"audit chain BROKEN at row {report.broken_id}: {report.reason} "
                   f"({report.checked} rows verified before it)", err=True)
        raise SystemExit(1)
    if report.stale_id is not None:
        click.echo(f"audit chain STALE: row {report.stale_id} and others, {report.unsealed} in all, are not sealed "
                   f"into the chain after {current_app.config['AUDIT_CHAIN_STALE_SECONDS']} s: is the chainer "
                   f"(Celery beat's chain-audit-events) running? `flask audit chain` seals them now "
                   f"({report.checked} rows verified)", err=True)
        raise SystemExit(1)
    waiting = f", {report.unsealed} recent rows waiting for the chainer" if report.unsealed else ""
    click.echo(f"audit chain intact: {report.checked} rows verified{waiting}")


@audit_cli.command("chain")
def audit_chain():
    """Seal every committed row not yet in the hash chain (the chainer normally does this after each commit)."""
    click.echo(f"sealed {trail.chain_pending(wait=True)} rows into the audit chain")


tokens_cli = AppGroup("tokens", help="Sign-in tokens.")


@tokens_cli.command("purge")
def tokens_purge():
    """Delete expired refresh tokens and blocklist rows."""
    refresh, revoked = tokens.purge_expired()
    click.echo(f"purged {refresh} refresh tokens and {revoked} blocklist rows")


reminders_cli = AppGroup("reminders", help="Appointment reminders.")


@reminders_cli.command("send-due")
def reminders_send_due():
    """Send the reminders that are due (safe to run from several workers at once)."""
    click.echo(f"sent {reminders.send_due()} reminders")


notifications_cli = AppGroup("notifications", help="Notifications.")


@notifications_cli.command("send-digests")
def notifications_send_digests():
    """E-mail one digest per consultation to participants who left messages unread."""
    click.echo(f"sent {messaging.send_digests()} digests")


video_cli = AppGroup("video", help="Video sessions.")


@video_cli.command("end-expired")
def video_end_expired():
    """End the video sessions whose appointment is over."""
    click.echo(f"ended {video.end_expired()} video sessions")


ai_cli = AppGroup("ai", help="The symptom checker's models.")


@ai_cli.command("train")
@click.option("--cases", type=int, default=None, help="Synthetic cases per species (default AI_TRAINING_CASES).")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--activate/--no-activate", default=True, show_default=True,
              help="Activate the new version if it passes the release gate (a failing model is stored, never active).")
@click.option("--with-feedback", is_flag=True, help="Add the cases doctors confirmed to the training part.")
def ai_train(cases, seed, activate, with_feedback):
    """Generate cases from the knowledge base, train, print held-out metrics and the vignette gate, store the version
    (and activate it if the gate passes)."""
    cases = cases or current_app.config["AI_TRAINING_CASES"]
    with click.progressbar(length=2 * len(classifier.SPECIES), label=f"training on {cases} cases per species",
                           item_show_func=lambda step: step) as bar:
        bundle, meta = classifier.train(cases_per_species=cases, seed=seed, with_feedback=with_feedback,
                                          progress=lambda step: bar.update(1, step))
    for species, metrics in meta["metrics"].items():
        recall = ", ".join(f"{level}: {value:.2f}" for level, value in metrics["urgency_recall"].items())
        click.echo(f"{species:6} top-1 {metrics['top1_accuracy']:.3f}  top-3 {metrics['top3_accuracy']:.3f}  "
                   f"urgency recall by level {{{recall}}}  ({metrics['holdout_cases']} held-out cases)")
    report = evaluation.evaluate((bundle, meta))
    passed, failures = evaluation.gate(report)
    meta["vignettes"] = evaluation.summary(report, passed, failures)
    _echo_evaluation(report, passed, failures)
    folder = classifier.save(bundle, meta, activate=activate and passed)
    click.echo(f"stored {meta['version']} in {folder}{' (active)' if activate and passed else ''}")
    if activate and not passed:
        raise click.ClickException("the model failed the release gate and was not activated")


@ai_cli.command("evaluate")
@click.option("--version", default=None, help="A stored model version (default: the active one).")
def ai_evaluate(version):
    """Score a model on the held-out clinical vignettes and apply the release gate (exit 1 if it fails)."""
    model = classifier.load(version) if version else classifier.active()
    click.echo(f"model {model[1]['version']} on {len(evaluation.vignettes())} held-out vignettes")
    report = evaluation.evaluate(model)
    passed, failures = evaluation.gate(report)
    _echo_evaluation(report, passed, failures)
    if not passed:
        raise SystemExit(1)


def _echo_evaluation(report, passed, failures):
    for line in evaluation.format_report(report):
        click.echo(line)
    for species, figures in report.items():
        if figures["under_triaged"]:
            click.echo(f"{species}: under-triaged {', '.join(figures['under_triaged'])}")
    click.echo("release gate: " + ("PASS" if passed else "FAIL: " + "; ".join(failures)))


@ai_cli.command("drain-outbox")
def ai_drain_outbox():
    """Deliver diagnosis logs that waited in the outbox while MongoDB was unreachable."""
    click.echo(f"delivered {diagnoses.drain_outbox()} diagnosis logs")


privacy_cli = AppGroup("privacy", help="Exports and erasure.")


@privacy_cli.command("purge")
def privacy_purge():
    """Purge the restricted records of erased patients whose retention period has ended."""
    click.echo(f"purged {erasure.purge_due()} restricted records")


@privacy_cli.command("expire-exports")
def privacy_expire_exports():
    """Delete export archives whose download time is over."""
    click.echo(f"expired {archive.expire_due()} exports")


keys_cli = AppGroup("keys", help="Field encryption keys: generate, rotate, status.")


@keys_cli.command("generate")
@click.option("--id", "key_id", default=None, help="The new key's id (default: today's date, e.g. 2026-11-30).")
def keys_generate(key_id):
    """Print a new encryption key (put it first in PAWMANITY_FIELD_KEYS) and a blind index key (for a new
    installation only: the blind index key does not rotate)."""
    key_id = key_id or utcnow().date().isoformat()
    click.echo(f"PAWMANITY_FIELD_KEYS entry:    {key_id}:{field_encryption.new_key()}")
    click.echo(f"PAWMANITY_BLIND_INDEX_KEY:     {field_encryption.new_key()}")


@keys_cli.command("rotate")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=500, show_default=True)
@click.option("--wait", is_flag=True, help="Run here until done instead of in the Celery worker.")
def keys_rotate(batch_size, wait):
    """Re-encrypt every identifier sealed under an older key with the active (first) key; resumable."""
    if not wait:
        encryption_tasks.rotate_field_keys.delay(batch_size)
        click.echo("re-encryption queued; `flask keys status` shows its progress")
        return
    key_rotation.rotate(batch_size=batch_size,
                        on_batch=lambda field: click.echo(f"  {field.table}.{field.name}: a batch done"))
    _echo_key_status()


@keys_cli.command("status")
def keys_status():
    """How many stored values each encrypted field has, and how many are under the active key."""
    _echo_key_status()


def _echo_key_status():
    active, report = key_rotation.status()
    click.echo(f"active key: {active}")
    for line in report:
        state = "done" if line["on_active_key"] == line["rows"] else "to rotate"
        click.echo(f"{line['field']:36} {line['on_active_key']:>8} of {line['rows']:>8} on the active key ({state}; "
                   f"{line['skipped']} undecryptable)")


sync_cli = AppGroup("sync", help="Offline sync for mobile apps.")


@sync_cli.command("purge")
def sync_purge():
    """Delete change-log rows (tombstones) and cursors older than PAWMANITY_SYNC_TOMBSTONE_DAYS."""
    changes, cursors = sync_retention.purge()
    click.echo(f"purged {changes} change-log rows and {cursors} cursors")


vitals_cli = AppGroup("vitals", help="Vital signs.")


@vitals_cli.command("rebuild-rollups")
@click.option("--patient", "patient_id", type=click.UUID, help="Only this patient's (default: every patient's).")
def vitals_rebuild_rollups(patient_id):
    """Recompute the hourly rollups from the readings (after readings were written around the app)."""
    click.echo(f"{vital_readings.rebuild_rollups(patient_id)} hourly rollups")


def register_commands(app):
    for command in (create_admin, demo_cli, audit_cli, tokens_cli, reminders_cli, notifications_cli, video_cli,
                    ai_cli, privacy_cli, keys_cli, sync_cli, vitals_cli):
        app.cli.add_command(command)
    for command in app.cli.commands.values():  # ours and flask-migrate's `db`
        _report_unreachable_database_in_one_line(command, app.config["SQLALCHEMY_DATABASE_URI"])


def _report_unreachable_database_in_one_line(command, url):
    invoke = command.invoke

    def guarded(ctx):
        try:
            return invoke(ctx)
        except OperationalError as error:
            shown = make_url(url).render_as_string(hide_password=True)
            reason = str(error.orig or error).strip().splitlines()[0]
            raise click.ClickException(f"cannot use the database at {shown} (DATABASE_URL): {reason}") from None

    command.invoke = guarded
