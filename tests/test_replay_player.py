"""The Live replay player's frame building: one consistent snapshot even when another run moves the replay."""

import numpy as np
import pytest

from chronoslib.replay import ReplaySession, ReplaySource
from pages.lib import replay_player


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


def _render(rs, **kw):
    series = np.asarray(rs.source.prices)
    return replay_player.render(rs, playing=True, fresh=True, chunk_id=1, frames_from=0, speed=25.0,
                                threshold=0.5, patience=3, regimes={}, replay_series=series, replay_label="price",
                                train_series=None, train_label="price", train_timestamps=None, **kw)


def test_frames_come_from_one_snapshot_when_the_replay_is_rewound_mid_render(live):
    eng, src = live
    rs = _RewoundMidRender(eng, src, stride=4)
    rs.step(20)
    rs.reads = 0
    _render(rs)                      # raised IndexError (streak of 5 windows indexed up to 19) before


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
