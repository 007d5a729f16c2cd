"""Writes the MSSD-layout fixture: mssd_layout_sessions.csv, _tracks.csv.

    python tests/simulator/data/make_mssd_layout.py

Deterministic (seeded), so rerunning it rewrites the same bytes. The files
follow the public Music Streaming Sessions Dataset's layout (README.md
beside this file): 36 sessions of 10 to 20 rows, all five outcome states,
every reason value, both spellings of booleans.
"""

import csv
import os
import uuid

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SESSION_HEADER = (
    "session_id", "session_position", "session_length", "track_id_clean",
    "skip_1", "skip_2", "skip_3", "not_skipped", "context_switch",
    "no_pause_before_play", "short_pause_before_play",
    "long_pause_before_play", "hist_user_behavior_n_seekfwd",
    "hist_user_behavior_n_seekback", "hist_user_behavior_is_shuffle",
    "hour_of_day", "date", "premium", "context_type",
    "hist_user_behavior_reason_start", "hist_user_behavior_reason_end")
TRACK_HEADER = (
    "track_id", "duration", "release_year", "us_popularity_estimate",
    "acousticness", "beat_strength", "bounciness", "danceability",
    "dyn_range_mean", "energy", "flatness", "instrumentalness", "key",
    "liveness", "loudness", "mechanism", "mode", "organism", "speechiness",
    "tempo", "time_signature", "valence") + tuple(
        f"acoustic_vector_{i}" for i in range(8))
REASONS = ("trackdone", "fwdbtn", "backbtn", "endplay", "clickrow",
           "playbtn", "appload", "remote", "logout", "trackerror",
           "clickside", "uriopen", "popup")
CONTEXTS = ("editorial_playlist", "user_collection", "catalog",
            "radio", "charts", "personalized_playlist")
# Outcome -> (skip_1, skip_2, skip_3, not_skipped), and how each ends.
STATES = {"skip_1": (1, 1, 1, 0), "skip_2": (0, 1, 1, 0),
          "skip_3": (0, 0, 1, 0), "ended_otherwise": (0, 0, 0, 0),
          "not_skipped": (0, 0, 0, 1)}
STATE_SHARES = (0.30, 0.10, 0.12, 0.08, 0.40)
NUM_TRACKS, NUM_SESSIONS = 120, 36


def _uuid(rng):
  return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _tracks(rng):
  rows = []
  for _ in range(NUM_TRACKS):
    rows.append([
        f"t_{_uuid(rng)}", f"{rng.uniform(60, 420):.6f}",
        int(rng.integers(1950, 2019)), f"{rng.uniform(90, 100):.6f}",
        *[f"{v:.6f}" for v in rng.uniform(0, 1, 4)],
        f"{rng.uniform(2, 15):.6f}",
        *[f"{v:.6f}" for v in rng.uniform(0, 1, 3)],
        int(rng.integers(0, 12)), f"{rng.uniform(0, 1):.6f}",
        f"{rng.uniform(-20, 0):.6f}", f"{rng.uniform(0, 1):.6f}",
        "major" if rng.random() < 0.6 else "minor",
        f"{rng.uniform(0, 1):.6f}", f"{rng.uniform(0, 1):.6f}",
        f"{rng.uniform(60, 200):.6f}", int(rng.choice([3, 4, 5])),
        f"{rng.uniform(0, 1):.6f}",
        *[f"{v:.6f}" for v in rng.uniform(-1, 1, 8)]])
  return rows


def _flag(value, capitalised):
  text = "true" if value else "false"
  return text.capitalize() if capitalised else text


def _sessions(rng, track_ids):
  rows, reason_at = [], 0
  names = list(STATES)
  for s in range(NUM_SESSIONS):
    session_id = f"0_{_uuid(rng)}"
    length = int(rng.integers(10, 21))
    capitalised = s % 2 == 1  # Both spellings of booleans, as files vary.
    shuffle, premium = rng.random() < 0.5, rng.random() < 0.8
    hour, context = int(rng.integers(0, 24)), CONTEXTS[s % len(CONTEXTS)]
    date = f"2018-07-{1 + s % 28:02d}"
    for position in range(1, length + 1):
      state = names[rng.choice(5, p=STATE_SHARES)] if position > 1 or s else (
          "ended_otherwise")
      flags = [_flag(v, capitalised) for v in STATES[state]]
      pause = int(rng.choice(3, p=(0.8, 0.1, 0.1)))
      start = REASONS[reason_at % len(REASONS)]
      end = REASONS[(reason_at + 5) % len(REASONS)]
      reason_at += 1
      rows.append([
          session_id, position, length,
          track_ids[int(rng.integers(len(track_ids)))], *flags,
          int(position > 1 and rng.random() < 0.1),
          int(pause == 0), int(pause == 1), int(pause == 2),
          int(rng.poisson(0.2)), int(rng.poisson(0.1)),
          _flag(shuffle, capitalised), hour, date,
          _flag(premium, capitalised), context, start, end])
  return rows


def main():
  rng = np.random.default_rng(20190101)
  tracks = _tracks(rng)
  sessions = _sessions(rng, [t[0] for t in tracks])
  for name, header, rows in (("mssd_layout_tracks.csv", TRACK_HEADER, tracks),
                             ("mssd_layout_sessions.csv", SESSION_HEADER,
                              sessions)):
    with open(os.path.join(HERE, name), "w", newline="") as f:
      writer = csv.writer(f, lineterminator="\n")
      writer.writerow(header)
      writer.writerows(rows)


if __name__ == "__main__":
  main()
