"""The paper's claims, each judged on a sweep's Table 1 columns."""

import numpy as np

NOT_YET = "not measured yet"


def verdicts(table):
    """One Markdown line per claim of the paper, with its numbers.

    A difference counts as real when it exceeds the seeds' spread: the sum
    of the two columns' standard deviations (with one seed the spread is
    unknown, and said so). Accuracy is the linear probe's when the runs have
    one, else kNN's. Collapsed columns (a seed's held-out U near 0) are
    named first; they count as measured (a hard loss that collapses does not
    keep U high), except as the least uniform or accurate column in (vi).

    Args:
        table: `sweep.columns(...)`.

    Returns:
        A Markdown string: a bullet per claim (i)-(vii), after a line naming
        the collapsed columns.
    """
    collapsed = [c["label"] for c in table if c["collapsed"]]
    info_nce = _by_tau(table, "info_nce")
    hard = _by_tau(table, "hard")
    tau_free = {c["loss"]: c for c in table if c["tau"] is None}
    accuracy = "linear_accuracy" if all(c["linear_accuracy"] is not None for c in table) else "knn_accuracy"
    claims = [
        ("(i) InfoNCE's U falls as tau rises", _monotone(info_nce, "uniformity", falling=True)),
        ("(ii) InfoNCE's T rises with tau", _monotone(info_nce, "tolerance", falling=False)),
        ("(iii) InfoNCE's accuracy peaks at an intermediate tau", _peak(info_nce, accuracy)),
        ("(iv) the hard loss keeps U high and flat across tau, with low T", _hard_flat(info_nce, hard)),
        ("(v) at large tau the hard loss is at least as accurate as InfoNCE", _hard_large_tau(info_nce, hard, accuracy)),
        ("(vi) Simple is the least uniform and accurate; HardSimple recovers", _simple(table, tau_free, accuracy)),
        ("(vii) Figure 8: positives stand above the nearest negatives at small tau, crowded at large tau",
         _figure8(info_nce)),
    ]
    lines = [f"- **{claim}**: {verdict}" for claim, verdict in claims]
    if collapsed:
        lines.insert(0, f"Collapsed: {', '.join(collapsed)}.\n")
    return "\n".join(lines) + "\n"


def _by_tau(table, loss):
    return sorted((c for c in table if c["loss"] == loss), key=lambda c: c["tau"])


def _value(column, key, digits=3):
    text = f"{column[key]:.{digits}f}"
    return text + (f" ± {column[key + '_std']:.{digits}f}" if column["seeds"] > 1 else "")


def _beyond_spread(a, b, key):
    """'beyond' / 'within' the seeds' spread, or 'spread unknown' (one seed)."""
    if min(a["seeds"], b["seeds"]) < 2:
        return "spread unknown (one seed)"
    spread = a[key + "_std"] + b[key + "_std"]
    return ("beyond" if abs(a[key] - b[key]) > spread else "within") + f" the seeds' spread ({spread:.3f})"


def _series(columns, key, digits=3):
    return ", ".join(f"{c['tau']:g}: {_value(c, key, digits)}" for c in columns)


def _monotone(columns, key, falling):
    if len(columns) < 2:
        return NOT_YET
    values = [c[key] for c in columns]
    steps = np.diff(values) * (-1 if falling else 1)
    ends = _beyond_spread(columns[0], columns[-1], key)
    if np.all(steps > 0):
        verdict = "holds"
    elif (values[-1] - values[0]) * (-1 if falling else 1) > 0:
        verdict = f"holds end to end, not monotone ({int(np.sum(steps <= 0))} of {len(steps)} steps reversed)"
    else:
        verdict = "fails"
    return f"{verdict}; {_series(columns, key)}; ends {ends}"


def _peak(columns, key):
    if len(columns) < 3:
        return NOT_YET
    best = int(np.argmax([c[key] for c in columns]))
    peak = columns[best]
    if best in (0, len(columns) - 1):
        inner = max(columns[1:-1], key=lambda c: c[key])
        verdict = (
            f"fails: best at tau {peak['tau']:g}, an end of the sweep (vs the best intermediate "
            f"tau {inner['tau']:g}: {_beyond_spread(peak, inner, key)})"
        )
    else:
        sides = [_beyond_spread(peak, columns[0], key), _beyond_spread(peak, columns[-1], key)]
        verdict = f"holds: best at tau {peak['tau']:g} (vs smallest tau {sides[0]}; vs largest {sides[1]})"
    return f"{verdict}; {key.replace('_', ' ')}: {_series(columns, key, 4)}"


def _hard_flat(info_nce, hard):
    pairs = _pairs(info_nce, hard)
    if len(pairs) < 2:
        return NOT_YET
    u_hard = [h["uniformity"] for _, h in pairs]
    u_info = [c["uniformity"] for c, _ in pairs]
    higher = sum(h["uniformity"] >= c["uniformity"] for c, h in pairs)
    lower_t = sum(h["tolerance"] <= c["tolerance"] for c, h in pairs)
    flatter = np.ptp(u_hard) < np.ptp(u_info)
    verdict = "holds" if higher == len(pairs) and lower_t == len(pairs) and flatter else "partly" if higher else "fails"
    return (
        f"{verdict}: H's U >= C's at {higher} of {len(pairs)} taus, H's T <= C's at {lower_t}; "
        f"range of U across tau: H {np.ptp(u_hard):.3f}, C {np.ptp(u_info):.3f}; "
        f"H U {_series([h for _, h in pairs], 'uniformity')}; H T {_series([h for _, h in pairs], 'tolerance')}"
    )


def _hard_large_tau(info_nce, hard, key):
    pairs = [(c, h) for c, h in _pairs(info_nce, hard) if c["tau"] >= 0.7]
    if not pairs:
        return NOT_YET
    parts = [
        f"tau {c['tau']:g}: H {_value(h, key, 4)} vs C {_value(c, key, 4)} "
        f"({'H >= C' if h[key] >= c[key] else 'H < C'}, {_beyond_spread(h, c, key)})"
        for c, h in pairs
    ]
    holds = all(h[key] >= c[key] for c, h in pairs)
    return ("holds" if holds else "fails") + f" ({key.replace('_', ' ')}): " + "; ".join(parts)


def _simple(table, tau_free, key):
    if "simple" not in tau_free or len(table) < 2:
        return NOT_YET
    simple = tau_free["simple"]
    others = [c for c in table if c is not simple and not c["collapsed"]]
    least_uniform = all(simple["uniformity"] < c["uniformity"] for c in others)
    least_accurate = all(simple[key] < c[key] for c in others)
    among = " of the columns that did not collapse" if len(others) < len(table) - 1 else ""
    text = (
        f"Simple U {_value(simple, 'uniformity')} ({'the lowest' if least_uniform else 'not the lowest'}{among}), "
        f"{key.replace('_', ' ')} {_value(simple, key, 4)} "
        f"({'the lowest' if least_accurate else 'not the lowest'}{among})"
    )
    if "hard_simple" in tau_free:
        recovered = tau_free["hard_simple"]
        text += (
            f"; HardSimple U {_value(recovered, 'uniformity')}, {key.replace('_', ' ')} "
            f"{_value(recovered, key, 4)} ({_beyond_spread(recovered, simple, key)})"
            + (", collapsed" if recovered["collapsed"] else "")
        )
        recovers = recovered[key] > simple[key] and recovered["uniformity"] > simple["uniformity"]
        verdict = "holds" if least_uniform and least_accurate and recovers else "fails"
    else:
        verdict = "holds so far (HardSimple not measured yet)" if least_uniform and least_accurate else "fails"
    return f"{verdict}: {text}"


def _figure8(columns):
    if len(columns) < 2:
        return NOT_YET
    gaps = [_positive_gap(c) for c in columns]
    text = ", ".join(f"{c['tau']:g}: {gap:+.3f}" for c, gap in zip(columns, gaps))
    verdict = "holds" if gaps[0] > 0 and gaps[0] > gaps[-1] else "fails"
    return (
        f"{verdict}: mean positive minus mean nearest-negative similarity (first seed), by tau: {text}"
    )


def _positive_gap(column):
    table = column["runs"][0]["similarity_table"]
    return float(np.mean(table["positive"]) - np.mean(np.asarray(table["negatives"])[:, 0]))


def _pairs(info_nce, hard):
    hard_by_tau = {h["tau"]: h for h in hard}
    return [(c, hard_by_tau[c["tau"]]) for c in info_nce if c["tau"] in hard_by_tau]
