// Playback contract suite against the fake stream (the real servers run it in
// test/integration/playback.real.test.ts).
import { describe } from 'vitest';
import { baseOptions, playbackContract } from '../contracts/playback.contract';
import { FakePlayback } from '../fakes/playback';

describe('playback contract: FakePlayback', () => {
  playbackContract((o) => new FakePlayback(baseOptions(o)), { followsSchedule: true });
});
