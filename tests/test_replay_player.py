"""The Live replay player's frame building: one consistent snapshot even when another run moves the replay.

Streamlit's fast reruns start a new script thread for a click (Play, Pause, Step) while the previous run may
still be building the player's frames; both touch the page's one ``ReplaySession``.
"""

import threading

import numpy as np
import pytest

from app_pages.lib import replay_player
from chronoslib.replay import ReplaySession, ReplaySource


class _RewoundMidRender(ReplaySession):
    """A replay whose position drops after its first read, as when a Pause run rewinds it from another thread
    while a chunk run is building frames."""

    reads = 0

    @property
    def position(self):
        self.reads += 1
        return self._pos if self.reads == 1 else min(self._pos, 5)

    @position.setter
    def position(self, v):
        self._pos = v


@pytest.fixture(scope="module")
def live(small_engine):
    eng, _ = small_engine
    x = np.random.default_rng(10).standard_normal((16 * 12, 6)).astype(np.float32)
    return eng, ReplaySource(name="cont", features=x, start_tick=eng.train_end_tick, prices=100 + np.cumsum(x[:, 0]))


def _render(rs, fresh=True, train_series=None):
    series = np.asarray(rs.source.prices)
    return replay_player.render(rs, playing=True, fresh=fresh, chunk_id=1, frames_from=0, speed=25.0,
                                threshold=0.5, patience=3, regimes={}, replay_series=series, replay_label="price",
                                train_series=train_series, train_label="price", train_timestamps=None)


def test_frames_come_from_one_snapshot_when_the_replay_is_rewound_mid_render(live):
    eng, src = live
    rs = _RewoundMidRender(eng, src, stride=4)
    rs.step(20)
    rs.reads = 0
    _render(rs, fresh=False)         # raised "IndexError: index 5 is out of bounds for axis 0 with size 5" before


class _ClickDuringRender(ReplaySession):
    """A replay that another script run (a Step / Play click, started by Streamlit's fast reruns in its own
    thread) steps while this run is building the player: the click's thread starts when the frame builder first
    reads a neighbour table, takes the replay's lock as the page's callbacks do, and is given up to a second."""

    other = None

    def neighbour_table(self, *a, **kw):
        if self.other is None:
            lk = getattr(replay_player, "lock", None)   # the page's callbacks hold the replay's lock, if it has one

            def click():
                if lk is None:
                    self.step(1)
                else:
                    with lk(self):
                        self.step(1)
            self.other = threading.Thread(target=click)
            self.other.start()
            self.other.join(1.0)
        return super().neighbour_table(*a, **kw)


@pytest.mark.parametrize("fresh", [True, False])
def test_a_click_stepping_the_replay_from_another_thread_waits_for_the_render(live, fresh):
    eng, src = live
    rs = _ClickDuringRender(eng, src, stride=4)
    rs.step(20)
    _render(rs, fresh=fresh)         # fresh: raised "IndexError: index 20 is out of bounds ... size 20" before
    rs.other.join(10)
    assert not rs.other.is_alive() and rs.position == 21   # the click ran after the render, not lost


def test_snapshot_alerts_cover_exactly_the_windows_done(live):
    eng, src = live
    rs = ReplaySession(eng, src, stride=4)
    assert replay_player.snapshot(rs, 0.5, 3)[0] == 0
    rs.step(7)
    p, streak, alerts = replay_player.snapshot(rs, 0.5, 3)
    assert p == 7 and len(streak) == 7 and len(alerts) == 7


def test_each_replay_has_its_own_lock(live):
    eng, src = live
    a, b = ReplaySession(eng, src, stride=4), ReplaySession(eng, src, stride=8)
    assert replay_player.lock(a) is replay_player.lock(a) and replay_player.lock(a) is not replay_player.lock(b)
