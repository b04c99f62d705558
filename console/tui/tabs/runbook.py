"""The Runbook tab, the runbook wizard: the run's executions as the journal's projections
hold them (steps, states, approvals and denials, live from other terminals), every runbook,
approval and gate event, and the actions: start a runbook (``s``), run the current step
(``n``), approve (``a``) or deny (``d``) the pending approval.

Actions call ``console.runbook.service``, the functions the CLI calls, so the one gate
decides; a refusal shows the gate's message (rule, policy version). Each action reads its
preview in a worker, shows the exact operations in a confirm screen (Cancel focused), then
acts in another worker. Writes need the armed mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from console.config import Settings
from console.errors import BackoutError, Exit
from console.tui import data
from console.tui.describe import RUNBOOK_KINDS
from console.tui.screens.base import PaletteCommand
from console.tui.screens.confirm import Confirmed, ConfirmScreen, TextField
from console.tui.screens.pick import PickScreen
from console.tui.tabs.journal_pane import JournalPane
from console.tui.tabs.runbook_view import (
    OUTCOME,
    WAITING,
    current_exec,
    preview_text,
    render_execs,
)

if TYPE_CHECKING:
    # The runbook service loads the executor, gate and loader: imported when first used, so
    # that opening the console does not pay for it.
    from console.runbook import service

WRITES = ("start", "next_step", "approve", "deny")


class RunbookPane(JournalPane):
    TAB_ID = "runbook"
    TAB_TITLE = "Runbook"
    HELP_TITLE = "Runbook"
    KINDS = RUNBOOK_KINDS
    EMPTY = "No runbook execution, approval or gate decision recorded for this run."
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start runbook", id="runbook.start"),
        Binding("n", "next_step", "Run step", id="runbook.next"),
        Binding("a", "approve", "Approve", id="runbook.approve"),
        Binding("d", "deny", "Deny", id="runbook.deny"),
    ]

    class Execs(Message):
        def __init__(self, execs: list[data.ExecView]) -> None:
            super().__init__()
            self.execs = execs

    class Runbooks(Message):
        def __init__(self, entries: list[service.RunbookEntry]) -> None:
            super().__init__()
            self.entries = entries

    class Previewed(Message):
        def __init__(self, preview: service.Preview) -> None:
            super().__init__()
            self.preview = preview

    class Done(Message):
        """An action finished: its outcome, or the refusal (the gate's message)."""

        def __init__(self, action: str, message: str, exit_code: Exit) -> None:
            super().__init__()
            self.action = action
            self.message = message
            self.exit_code = exit_code

    def __init__(self, run_id: str, *, eager: bool = False) -> None:
        super().__init__(run_id, eager=eager)
        self.execs: list[data.ExecView] = []
        self.busy: str | None = None
        self.last: Text | None = None
        self._notice_shown: Text | None = None

    # --- what the tab shows -----------------------------------------------------------------

    @property
    def armed(self) -> bool:
        return self.console_app.armed

    def notice(self) -> Text:
        t = Text()
        if self.last is not None:
            t.append_text(self.last)
            t.append("\n")
        if self.busy:
            t.append(f"… {self.busy}", style="bold")
            return t
        if not self.armed:
            why = "--readonly" if self.console_app.readonly_forced else "press A to arm"
            t.append("◌ read-only", style="bold")
            t.append(f" ({why}): start s · run step n · approve a · deny d are off", style="dim")
            return t
        actor = self.console_app.journal.actor
        roles = ", ".join(self._settings().policy.roles_of(actor)) or "no role"
        t.append("▶ armed", style="bold yellow")
        t.append(f" as {actor} ({roles}): ")
        t.append(" · ".join(self._offers()), style="bold")
        return t

    def _offers(self) -> list[str]:
        ex = current_exec(self.execs)
        if ex is None:
            return ["s start a runbook"]
        offers = [f"n run step '{ex.current_step}'"]
        if ex.status in WAITING:
            offers += ["a approve", "d deny"]
        return offers

    def _show_notice(self) -> None:
        # Called on every bindings refresh (focus moves too): repaint only what changed.
        text = self.notice()
        found = self.query(f"#{self.TAB_ID}-notice")
        if found and text != self._notice_shown:
            self._notice_shown = text
            found.first(Static).update(text)

    def extra(self) -> ComposeResult:
        yield Static(Text("Loading runbook executions…", style="dim"), id="runbook-state")

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: object) -> None:
        # Arming refreshes the bindings: the notice says what is offered now.
        if self.live:
            self._show_notice()

    def first_show(self) -> None:
        super().first_show()
        self._load_execs()

    def show_bundle(self, bundle: data.RunBundle, *, changed: bool) -> None:
        super().show_bundle(bundle, changed=changed)
        if changed and self.live:
            self._load_execs()

    @work(
        thread=True,
        group="runbook-execs",
        name="runbook.execs",
        exclusive=True,
        exit_on_error=False,
    )
    def _load_execs(self) -> None:
        self.post_message(self.Execs(data.runbook_execs(self.console_app.journal, self.run_id)))

    @on(Execs)
    def _execs(self, message: Execs) -> None:
        message.stop()
        self.execs = message.execs
        found = self.query("#runbook-state")
        if not found:
            return
        text = (
            render_execs(message.execs)
            if message.execs
            else Text("No runbook execution for this run yet.", style="dim")
        )
        found.first(Static).update(text)
        self._show_notice()
        self.refresh_bindings()

    # --- actions: gated by the armed mode, each previewed and confirmed ---------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Actions that write are shown disabled (the notice says why) unless armed and
        applicable: approve and deny only while an approval waits."""
        if action not in WRITES:
            return True
        if not self.armed or self.busy:
            return None
        ex = current_exec(self.execs)
        if action in ("approve", "deny") and (ex is None or ex.status not in WAITING):
            return None
        if action == "next_step" and ex is None:
            return None
        return True

    def _may_write(self) -> bool:
        if self.busy:
            self.notify(f"wait: {self.busy}", severity="warning")
            return False
        if not self.armed:
            self.notify("Read-only: press A to arm actions that write.", severity="warning")
            return False
        return True

    def _settings(self) -> Settings:
        return self.console_app.settings or Settings()

    def _set_busy(self, what: str | None) -> None:
        self.busy = what
        self._show_notice()
        self.refresh_bindings()

    def action_start(self) -> None:
        if self._may_write():
            self._set_busy("reading the runbooks")
            self._list_runbooks()

    def action_next_step(self) -> None:
        ex = current_exec(self.execs)
        if not self._may_write():
            return
        if ex is None:
            self.notify("No open runbook execution for this run: press s to start one.")
            return
        self._set_busy(f"planning step '{ex.current_step}'")
        self._preview("next", ex.id)

    def action_approve(self) -> None:
        self._decision("approve")

    def action_deny(self) -> None:
        self._decision("deny")

    def _decision(self, verb: str) -> None:
        ex = current_exec(self.execs)
        if not self._may_write():
            return
        if ex is None or ex.status not in WAITING:
            self.notify("Nothing waits for approval on this run.")
            return
        self._set_busy(f"reading the plan to {verb}")
        self._preview(verb, ex.id)

    @work(thread=True, group="runbook-wizard", name="runbook.list", exit_on_error=False)
    def _list_runbooks(self) -> None:
        from console.runbook import service

        self._reply("start", lambda: self.Runbooks(service.runbooks()))

    @on(Runbooks)
    def _pick_runbook(self, message: Runbooks) -> None:
        message.stop()
        self._set_busy(None)
        options = [
            (
                e.name,
                Text(f"{e.name}  v{e.version}  {e.title}")
                if e.valid
                else Text(f"{e.name}  invalid ({e.problems} problem(s))", style="dim"),
                e.valid,
            )
            for e in message.entries
        ]
        if not options:
            self.notify("No runbook found in ./runbooks or the shipped ones.", severity="error")
            return

        def picked(name: str | None) -> None:
            if name:
                self._set_busy(f"reading runbook {name}")
                self._preview("start", name)

        self.app.push_screen(PickScreen(f"Start a runbook for run {self.run_id}", options), picked)

    @work(thread=True, group="runbook-wizard", name="runbook.preview", exit_on_error=False)
    def _preview(self, action: str, ref: str) -> None:
        """What the action will journal and execute (the exact plan), read before asking."""
        from console.runbook import service

        journal, settings = self.console_app.journal, self._settings()

        def read() -> Message:
            if action == "start":
                return self.Previewed(service.start_preview(ref, self.run_id))
            if action == "next":
                return self.Previewed(service.step_preview(journal, settings, ref))
            approve = action == "approve"
            return self.Previewed(service.approval_preview(journal, settings, ref, approve=approve))

        self._reply(action, read)

    @on(Previewed)
    def _confirm(self, message: Previewed) -> None:
        message.stop()
        self._set_busy(None)
        p = message.preview
        title, confirm, field = self._question(p)

        def answered(result: Confirmed | None) -> None:
            if result is not None:
                self._set_busy(f"{p.action}: {p.step_id} (journaling)")
                self._act(p, result.text)

        self.app.push_screen(
            ConfirmScreen(title, preview_text(p), confirm=confirm, field=field), answered
        )

    def _question(self, p: service.Preview) -> tuple[str, str, TextField | None]:
        """The confirm screen's title, confirm button and text field for a preview."""
        digest = f" {p.plan_digest[:12]}" if p.plan_digest else ""
        if p.action == "start":
            field = TextField(p.answer.prompt, required=True) if p.answer else None
            return f"Start a runbook for run {self.run_id}?", "Start", field
        if p.action == "approve":
            return f"Approve plan{digest} of step '{p.step_id}'?", "Approve", TextField("Comment")
        if p.action == "deny":
            return f"Deny step '{p.step_id}'?", "Deny", TextField("Why", required=True)
        field = TextField(p.answer.prompt, p.answer.required) if p.answer else None
        if p.kind == "manual":
            return f"Confirm manual step '{p.step_id}' is done?", "Done", field
        return f"Run step '{p.step_id}' ({p.kind})?", "Run step", field

    @work(thread=True, group="runbook-wizard", name="runbook.act", exit_on_error=False)
    def _act(self, p: service.Preview, text: str) -> None:
        """The action itself, through the service (the gate decides, the journal records)."""
        from console.runbook import service

        journal, settings = self.console_app.journal, self._settings()

        def act() -> Message:
            service.prepare(journal, settings, None)
            outcome = service.perform(journal, settings, p, text)
            return self.Done(p.action, outcome.message, outcome.exit_code)

        self._reply(p.action, act)

    def _reply(self, action: str, job: Callable[[], Message]) -> None:
        """Post what ``job`` (in a worker thread) returns; a failure posts ``Done`` with its
        message, so the wizard is never left busy and shows no traceback."""
        try:
            reply = job()
        except BackoutError as exc:
            reply = self.Done(action, exc.message, exc.exit_code)
        except Exception as exc:  # anything else still ends the action, with what broke
            self.log.error(f"runbook {action} failed", exc)
            reply = self.Done(action, f"{type(exc).__name__}: {exc}", Exit.FAILED)
        self.post_message(reply)

    @on(Done)
    def _done(self, message: Done) -> None:
        message.stop()
        self._set_busy(None)
        mark, style, severity = OUTCOME.get(message.exit_code, OUTCOME[Exit.FAILED])
        self.last = Text(mark + message.message, style=style)
        self._show_notice()
        self.notify(message.message, title=f"runbook {message.action}", severity=severity)
        self._load_execs()
        self.list.reload()  # what was journaled, without waiting for the head poll

    def palette_commands(self, show: Callable[[], None]) -> Iterable[PaletteCommand]:
        """The wizard's actions for the palette (``show`` brings this tab forward first)."""
        for title, key, action in (
            ("Runbook: start a runbook for this run", "s", self.action_start),
            ("Runbook: run the current step", "n", self.action_next_step),
            ("Runbook: approve the pending step", "a", self.action_approve),
            ("Runbook: deny the pending step", "d", self.action_deny),
        ):
            yield PaletteCommand(
                title, key if self.armed else f"{key} (arm first: A)", _then(show, action)
            )


def _then(first: Callable[[], None], then: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        first()
        then()

    return run
