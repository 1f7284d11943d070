"""One worker helper for every long action of the widget, with its progress bar.

:meth:`TaskRunner.start` runs ``work(progress)`` in a napari worker thread. ``progress`` is
the library's ``progress(stage, done, total)`` callback: the worker only stores the latest
state, and a timer in the GUI thread shows it (stage, a bar whose count never passes its
total, elapsed time), so a fast loop cannot flood the event loop. Cancel sets a flag that
makes the next ``progress`` call raise; a stage that reports nothing (``cv2.kmeans``) is
abandoned after ``abandon_after`` seconds: the widget is free again and whatever the thread
returns later is dropped. ``on_done`` runs in the GUI thread, and no exception of the work
or of ``on_done`` escapes into napari's event loop: failures become notifications.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

REFRESH_MS = 100
ABANDON_AFTER = 1.0  # seconds a cancelled task may take to stop before it is abandoned


class Cancelled(Exception):
    """Raised in the worker by ``progress`` once the user has cancelled."""


@dataclass(eq=False)
class Task:
    """A running action: what it is, where it stands, whether it should stop."""

    title: str
    on_done: Callable[[object], object]
    started: float = field(default_factory=time.monotonic)
    state: tuple[str, int, int] = ("starting", 0, 0)
    stop: threading.Event = field(default_factory=threading.Event)
    worker: object = None

    def progress(self, stage: str, done: int, total: int) -> None:
        """Store the state; the ``progress(stage, done, total)`` callback of the library."""
        if self.stop.is_set():
            raise Cancelled
        self.state = (stage, done, total)


def guard(title: str, function: Callable, *args) -> None:
    """Call ``function(*args)``; any exception becomes an error notification."""
    try:
        function(*args)
    except Exception as error:  # noqa: BLE001 - nothing may reach napari's event loop
        show_error(f"{title} failed: {_describe(error)}")


def slot(function: Callable, *args, title: str = "K-means widget") -> Callable:
    """Return a Qt/napari slot calling ``function(*args)``, safe for the event loop.

    The signal's own arguments are ignored; an exception becomes an error notification.
    """
    return lambda *_signal: guard(title, function, *args)


def _describe(error: BaseException) -> str:
    if isinstance(error, ValueError | MemoryError | OSError):
        return str(error) or type(error).__name__
    return f"{type(error).__name__}: {error}"


class TaskRunner(QWidget):
    """Runs one task at a time and shows its stage, progress, elapsed time and Cancel."""

    def __init__(self, parent=None, abandon_after: float = ABANDON_AFTER) -> None:
        super().__init__(parent)
        self.abandon_after = abandon_after
        self.task: Task | None = None
        self.listeners: list[Callable[[bool], object]] = []
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running action; nothing is added or changed")
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.bar, stretch=1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addLayout(row)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.hide()

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(self, title: str, work: Callable, on_done: Callable[[object], object], replace=False):
        """Run ``work(progress)`` in a worker; ``on_done(result)`` in the GUI thread.

        Returns the worker, or None when another task is running (and ``replace`` is false;
        with ``replace`` the running task is abandoned first).
        """
        if self.task is not None:
            if not replace:
                show_info(f"{self.task.title} is running: wait for it or cancel it.")
                return None
            self._abandon(self.task, notify=False)
        task = Task(title, on_done)

        def body():
            try:
                return "done", work(task.progress)
            except Cancelled:
                return "cancelled", None
            except Exception as error:  # noqa: BLE001 - reported as a notification
                return "failed", error

        task.worker = create_worker(body, _start_thread=False)
        task.worker.returned.connect(lambda outcome: self._finished(task, outcome))
        self.task = task
        self.cancel_button.setEnabled(True)
        self.refresh()
        self.show()
        self.timer.start()
        self._notify(True)
        task.worker.start()
        return task.worker

    def cancel(self) -> None:
        """Ask the running task to stop; abandon it if it has not within ``abandon_after``."""
        task = self.task
        if task is None or task.stop.is_set():
            return
        task.stop.set()
        self.cancel_button.setEnabled(False)
        self.refresh()
        QTimer.singleShot(int(self.abandon_after * 1000), lambda: self._abandon(task))

    def close_all(self) -> None:
        """Drop the running task at once (the widget is closing): nothing will be added."""
        if self.task is not None:
            self._abandon(self.task, notify=False)

    def refresh(self) -> None:
        """Show the task's state: stage, count (never past its total), elapsed seconds."""
        task = self.task
        if task is None:
            return
        stage, done, total = task.state
        elapsed = time.monotonic() - task.started
        if task.stop.is_set():
            self.status.setText(f"{task.title}: Cancelling… ({elapsed:.1f} s)")
        else:
            count = f" {min(done, total)}/{total}" if total > 0 else ""
            self.status.setText(f"{task.title}: {stage}{count} ({elapsed:.1f} s)")
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(max(done, 0), total))
        else:
            self.bar.setRange(0, 0)  # busy: no count to show

    def _finished(self, task: Task, outcome) -> None:
        if task is not self.task:
            return  # abandoned: its result is dropped
        self._end()
        kind, value = outcome
        if kind == "cancelled":
            show_info(f"{task.title} cancelled: nothing was added or changed.")
        elif kind == "failed":
            show_error(f"{task.title} failed: {_describe(value)}")
        else:
            guard(task.title, task.on_done, value)

    def _abandon(self, task: Task, notify: bool = True) -> None:
        if task is not self.task:
            return
        task.stop.set()
        self._end()
        if notify:
            show_info(f"{task.title} cancelled: nothing was added or changed.")

    def _end(self) -> None:
        self.task = None
        self.timer.stop()
        self.hide()
        self._notify(False)

    def _notify(self, busy: bool) -> None:
        for listener in self.listeners:
            guard("K-means widget", listener, busy)
