"""The flowlite error tree.

    FlowliteError                 anything flowlite reports to a person
    ├── UserError                 the user's workflow, input or code is at fault
    │   ├── WorkflowInvalid       a workflow document breaks the spec (carries every problem)
    │   ├── ExpressionError       an expression does not parse, is not allowed, or failed
    │   ├── NodeError             a node failed while running (carries node name, item index)
    │   │   └── NodeTimeout       a node run took longer than its timeout
    │   ├── ExecutionCanceled     an execution was cancelled (API, Ctrl-C, workflow timeout)
    │   └── NotFound              a named workflow, node, credential, ... does not exist
    └── InternalError             flowlite itself failed (a bug, a broken sandbox, a lost database)

Each error carries a message a user can act on. The API turns these into problem JSON in one
handler; the CLI turns them into one line on stderr and an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ExecutionCanceled",
    "ExpressionError",
    "FlowliteError",
    "InternalError",
    "NodeError",
    "NodeTimeout",
    "NotFound",
    "Problem",
    "UserError",
    "WorkflowInvalid",
]


class FlowliteError(Exception):
    """Base of every error flowlite raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserError(FlowliteError):
    """The user's workflow, input or code is at fault; fixing it is up to them."""


class InternalError(FlowliteError):
    """flowlite itself failed; the message says what broke."""


class NotFound(UserError):
    """A named object does not exist."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a workflow document, with where it is."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class WorkflowInvalid(UserError):
    """A workflow document has one or more problems; all of them are listed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"workflow is invalid ({len(problems)} problem(s)):\n{lines}")


class ExpressionError(UserError):
    """An expression could not be parsed, is not allowed, or failed while evaluating."""

    def __init__(self, message: str, expression: str | None = None) -> None:
        self.expression = expression
        text = f"{message} in expression {expression!r}" if expression is not None else message
        super().__init__(text)
        self.reason = message


class NodeError(UserError):
    """A node failed while running."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        item_index: int | None = None,
        error_class: str | None = None,
    ) -> None:
        super().__init__(message)
        self.node = node
        self.item_index = item_index
        self.error_class = error_class or type(self).__name__


class NodeTimeout(NodeError):
    """A node run took longer than its timeout."""


class ExecutionCanceled(UserError):
    """An execution was cancelled; the reason says by whom or why."""
