"""The `date_time` node: now, format, parse, add, subtract, diff, round and extract.

Dates are read from a field as ISO 8601 text (``2026-11-21T10:00:00Z``, ``2026-11-21``), as
epoch numbers (seconds; milliseconds when larger than 1e11; numeric text too), or with
``format`` (strftime codes) for `parse`. Every date is converted to ``timezone`` (default: the
workflow's) before it is used; a date without an offset is taken to be in that timezone.
Dates are written as ISO 8601 text with the offset.

Arithmetic: seconds, minutes and hours are elapsed time; days and weeks move the wall clock
(the same local time on the next day, across a DST change); months and years move the calendar
and clamp the day (January 31 plus one month is February 28 or 29). `diff` counts the same way:
whole calendar months and years, and fractions of the other units.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import zoneinfo
from typing import Any

from flowlite.errors import ExpressionError, NodeError
from flowlite.expressions import has_expression
from flowlite.nodes.transform import put_field
from flowlite.sdk import MISSING, Item, NodeContext, NodeType, Outputs, Param, get_field

__all__ = ["NODES", "parse_datetime", "shift"]

OPERATIONS = ("now", "format", "parse", "add", "subtract", "diff", "round", "extract")
UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")
PARTS = ("year", "month", "day", "hour", "minute", "second", "weekday", "week")
_EPOCH = re.compile(r"[+-]?\d+(\.\d+)?")
_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}


def _zone(name: Any, default: dt.tzinfo) -> dt.tzinfo:
    if name is None or name == "":
        return default
    if name == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise NodeError(f"parameter 'timezone': unknown timezone {name!r}") from None


def _normalize(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    # a wall time in a DST gap (02:30 on a spring-forward day) becomes the real instant
    return moment.astimezone(dt.UTC).astimezone(tz)


def _from_epoch(number: float, tz: dt.tzinfo) -> dt.datetime:
    seconds = number / 1000 if abs(number) > 1e11 else number
    return dt.datetime.fromtimestamp(seconds, tz)


def parse_datetime(value: Any, tz: dt.tzinfo, fmt: str | None = None) -> dt.datetime:
    """A value as an aware datetime in ``tz``; raises ValueError saying what was wrong."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    elif isinstance(value, bool) or value is None:
        raise ValueError(f"{value!r} is not a date")
    elif isinstance(value, int | float):
        return _from_epoch(value, tz)
    elif isinstance(value, str):
        text = value.strip()
        if fmt:
            try:
                moment = dt.datetime.strptime(text, fmt)
            except ValueError:
                raise ValueError(f"{value!r} does not match the format {fmt!r}") from None
        elif _EPOCH.fullmatch(text):
            return _from_epoch(float(text), tz)
        else:
            try:
                moment = dt.datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a date (ISO 8601 text or epoch seconds)"
                ) from None
    else:
        raise ValueError(f"a {type(value).__name__} is not a date")
    if moment.tzinfo is None:
        return _normalize(moment.replace(tzinfo=tz), tz)
    return moment.astimezone(tz)


def shift(moment: dt.datetime, amount: float, unit: str) -> dt.datetime:
    """``moment`` moved by ``amount`` units (negative: back), in the moment's timezone."""
    tz = moment.tzinfo
    assert tz is not None
    if unit in ("seconds", "minutes", "hours"):
        delta = dt.timedelta(seconds=amount * _SECONDS[unit])
        return (moment.astimezone(dt.UTC) + delta).astimezone(tz)
    if unit in ("days", "weeks"):
        # aware arithmetic with one tzinfo moves the wall clock
        return _normalize(moment + dt.timedelta(seconds=amount * _SECONDS[unit]), tz)
    if amount != int(amount):
        raise ValueError(f"{unit} need a whole amount, got {amount}")
    months = int(amount) * (12 if unit == "years" else 1)
    year, month0 = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return _normalize(moment.replace(year=year, month=month0 + 1, day=day), tz)


def _floor(moment: dt.datetime, unit: str) -> dt.datetime:
    if unit == "seconds":
        floored = moment.replace(microsecond=0)
    elif unit == "minutes":
        floored = moment.replace(second=0, microsecond=0)
    elif unit == "hours":
        floored = moment.replace(minute=0, second=0, microsecond=0)
    else:
        floored = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if unit == "weeks":
            floored -= dt.timedelta(days=moment.weekday())
        elif unit == "months":
            floored = floored.replace(day=1)
        elif unit == "years":
            floored = floored.replace(month=1, day=1)
    assert moment.tzinfo is not None
    return _normalize(floored, moment.tzinfo)


def _round(moment: dt.datetime, unit: str, mode: str) -> dt.datetime:
    floored = _floor(moment, unit)
    if mode == "floor" or floored == moment:
        return floored
    ceiled = shift(floored, 1, unit)
    if mode == "ceil":
        return ceiled
    return floored if moment - floored < ceiled - moment else ceiled


def _diff(start: dt.datetime, end: dt.datetime, unit: str) -> int | float:
    if unit in ("seconds", "minutes", "hours"):
        seconds = (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds()
    elif unit in ("days", "weeks"):
        end = end.astimezone(start.tzinfo)
        seconds = (end.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds()
    else:
        local_end = end.astimezone(start.tzinfo)
        months = (local_end.year - start.year) * 12 + local_end.month - start.month
        if months > 0 and shift(start, months, "months") > end:
            months -= 1
        elif months < 0 and shift(start, months, "months") < end:
            months += 1
        return months if unit == "months" else int(months / 12)
    value = seconds / _SECONDS[unit]
    return int(value) if value.is_integer() else value


def _extract(moment: dt.datetime, part: str) -> int:
    if part == "weekday":
        return moment.isoweekday()
    if part == "week":
        return moment.isocalendar().week
    value: int = getattr(moment, part)
    return value


def _amount(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"parameter 'amount' must be a number, got {value!r}")
    if isinstance(value, int | float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"parameter 'amount' must be a number, got {value!r}") from None


class DateTime(NodeType):
    type = "date_time"
    display_name = "Date & time"
    category = "data"
    description = (
        "Gets the current time, formats, parses, shifts, compares, rounds dates or extracts a "
        "part of them, in the workflow's timezone or another one."
    )
    params = (
        Param("operation", "options", "What to do", options=OPERATIONS, required=True),
        Param(
            "field",
            "string",
            "The field holding the date (ISO 8601 text or epoch seconds/milliseconds); for "
            "diff, the start. Needed by every operation but now.",
        ),
        Param(
            "format",
            "string",
            "strftime codes (`%Y-%m-%d %H:%M`): the output of format and now, the input of parse "
            "(parse without it reads ISO 8601 or epoch)",
        ),
        Param("amount", "number", "For add and subtract: how many units (whole for months, years)"),
        Param(
            "unit",
            "options",
            "For add, subtract, diff and round; for extract, the part when `part` is not given",
            options=UNITS,
            default="days",
        ),
        Param(
            "end",
            "string",
            "For diff: the field holding the end date (default: now); the result is end - "
            "start in `unit`",
        ),
        Param(
            "mode",
            "options",
            "For round: down to the unit (floor), up (ceil) or to the nearest",
            options=("floor", "ceil", "nearest"),
            default="floor",
        ),
        Param(
            "part",
            "options",
            "For extract: the part (weekday: 1 = Monday .. 7 = Sunday; week: the ISO week)",
            options=PARTS,
        ),
        Param("timezone", "string", "IANA timezone (default: the workflow's)"),
        Param(
            "into",
            "string",
            "The output field (default: `field` itself; now: `now`; diff: `diff`; extract: "
            "the part's name)",
        ),
    )

    def check(self, parameters: dict[str, Any]) -> list[tuple[str, str]]:
        operation = parameters.get("operation")
        problems: list[tuple[str, str]] = []
        if operation in OPERATIONS and operation != "now" and not parameters.get("field"):
            problems.append(("field", f"{operation} needs the field holding the date"))
        if operation == "format" and not parameters.get("format"):
            problems.append(("format", "format needs strftime codes, e.g. '%Y-%m-%d'"))
        if operation in ("add", "subtract") and parameters.get("amount") is None:
            problems.append(("amount", f"{operation} needs an amount"))
        zone = parameters.get("timezone")
        if isinstance(zone, str) and zone and not has_expression(zone):
            try:
                _zone(zone, dt.UTC)
            except NodeError as exc:
                problems.append(("timezone", exc.message.split(": ", 1)[1]))
        return problems

    async def run(self, ctx: NodeContext, items: list[Item]) -> Outputs:
        now = dt.datetime.now(dt.UTC)  # one instant for the whole run
        zones: dict[Any, dt.tzinfo] = {}
        out: list[Item] = []
        for index, source in enumerate(items):
            try:
                zone_name = ctx.param("timezone", index)
                tz = zones.get(zone_name)
                if tz is None:
                    tz = zones[zone_name] = _zone(zone_name, ctx.timezone)
                name, value = self._apply(ctx, index, source["json"], now.astimezone(tz), tz)
                json = dict(source["json"])
                put_field(json, name, value)
            except (NodeError, ExpressionError, ValueError, OverflowError) as exc:
                failed = ctx.item_error(index, exc)
                if failed is not None:
                    out.append(failed)
                continue
            binary = source.get("binary")
            out.append({"json": json, "binary": binary} if binary else {"json": json})
        return {"main": out}

    def _apply(
        self, ctx: NodeContext, index: int, data: dict[str, Any], now: dt.datetime, tz: dt.tzinfo
    ) -> tuple[str, Any]:
        operation = ctx.param("operation", index)
        into = ctx.param("into", index)
        fmt = ctx.param("format", index)
        if operation == "now":
            return into or "now", now.strftime(fmt) if fmt else now.isoformat()
        if operation not in OPERATIONS:
            raise NodeError(f"parameter 'operation': unknown operation {operation!r}")
        field = ctx.param("field", index)
        if not isinstance(field, str) or not field:
            raise NodeError(f"{operation} needs `field`: the field holding the date")
        moment = self._read(data, field, tz, fmt if operation == "parse" else None)
        unit = ctx.param("unit", index)
        if operation in ("add", "subtract", "diff", "round") and unit not in UNITS:
            raise NodeError(f"parameter 'unit' must be one of {', '.join(UNITS)}, got {unit!r}")
        if operation == "format":
            if not fmt:
                raise NodeError("format needs `format`: strftime codes such as '%Y-%m-%d'")
            return into or field, moment.strftime(fmt)
        if operation == "parse":
            return into or field, moment.isoformat()
        if operation in ("add", "subtract"):
            amount = _amount(ctx.param("amount", index))
            sign = -1 if operation == "subtract" else 1
            return into or field, shift(moment, sign * amount, unit).isoformat()
        if operation == "diff":
            end_field = ctx.param("end", index)
            end = self._read(data, end_field, tz, None) if end_field else now
            return into or "diff", _diff(moment, end, unit)
        if operation == "round":
            mode = ctx.param("mode", index)
            if mode not in ("floor", "ceil", "nearest"):
                raise NodeError(f"parameter 'mode' must be floor, ceil or nearest, got {mode!r}")
            return into or field, _round(moment, unit, mode).isoformat()
        part = ctx.param("part", index) or (unit[:-1] if isinstance(unit, str) else None)
        if part not in PARTS:
            raise NodeError(f"parameter 'part' must be one of {', '.join(PARTS)}, got {part!r}")
        return into or part, _extract(moment, part)

    @staticmethod
    def _read(data: dict[str, Any], field: str, tz: dt.tzinfo, fmt: str | None) -> dt.datetime:
        value = get_field(data, field)
        if value is MISSING:
            raise NodeError(f"field {field!r} is missing from the item")
        try:
            return parse_datetime(value, tz, fmt)
        except ValueError as exc:
            raise NodeError(f"field {field!r}: {exc}") from None


NODES: list[type[NodeType]] = [DateTime]
