// Playback contract suite against the fake sink (the real servers run it in
// test/integration/audio-out-contract.test.ts).
import { describe } from 'vitest';
import { FakePlayback } from '../../src/audio/out/fake-playback';
import { baseOptions, playbackContract } from '../integration/audio-out-contract-suite';

describe('playback contract: FakePlayback', () => {
  playbackContract((o) => new FakePlayback(baseOptions(o)));
});
