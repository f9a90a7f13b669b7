import { intOption, untilStopSignal } from './options';

describe('intOption', () => {
  const ENV = 'TALLY_TEST_INT_OPTION';
  afterEach(() => {
    delete process.env[ENV];
  });

  it('takes the flag, else the environment variable, else the fallback', () => {
    process.env[ENV] = '7';
    expect(intOption('3', ENV, 5, '--n')).toBe(3);
    expect(intOption(undefined, ENV, 5, '--n')).toBe(7);
    process.env[ENV] = '';
    expect(intOption(undefined, ENV, 5, '--n')).toBe(5);
    delete process.env[ENV];
    expect(intOption(undefined, ENV, 5, '--n')).toBe(5);
  });

  it('accepts 0 and the maximum, which is 65535 (a port) unless given', () => {
    expect(intOption('0', ENV, 5, '--n')).toBe(0);
    expect(intOption('65535', ENV, 5, '--n')).toBe(65535);
    expect(intOption('3600', ENV, 5, '--drain-seconds', 3600)).toBe(3600);
  });

  it.each(['-1', '1.5', 'five', '65536'])('refuses %s, naming the option and the range', (raw) => {
    expect(() => intOption(raw, ENV, 5, '--n')).toThrow(`--n must be an integer from 0 to 65535, got "${raw}"`);
  });

  it('refuses a value above a given maximum, from the environment too', () => {
    process.env[ENV] = '3601';
    expect(() => intOption(undefined, ENV, 5, '--drain-seconds', 3600)).toThrow(
      '--drain-seconds must be an integer from 0 to 3600, got "3601"',
    );
  });
});

describe('untilStopSignal', () => {
  const listeners = () => ({ term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') });
  let before: ReturnType<typeof listeners>;
  beforeEach(() => {
    before = listeners();
  });
  afterEach(() => {
    // A test that fails half-way must not leave a listener behind that swallows the next test's signals.
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      for (const l of process.listeners(signal).slice(signal === 'SIGTERM' ? before.term : before.int))
        process.off(signal, l);
    }
  });

  const recorder = () => {
    const logged: [object, string][] = [];
    return { logged, log: { info: (obj: object, msg: string) => void logged.push([obj, msg]) } };
  };

  it('resolves on the first signal and, without onRepeat, leaves later ones their default effect', async () => {
    const { logged, log } = recorder();
    const stopped = untilStopSignal(log);
    expect(listeners()).toEqual({ term: before.term + 1, int: before.int + 1 });
    process.emit('SIGINT', 'SIGINT');
    await stopped;
    expect(logged).toEqual([[{ signal: 'SIGINT' }, 'shutting down']]);
    expect(listeners()).toEqual(before);
  });

  it('hands every later SIGTERM or SIGINT to onRepeat instead of letting it end the process', async () => {
    const { logged, log } = recorder();
    const repeats: string[] = [];
    const stopped = untilStopSignal(log, (signal) => repeats.push(signal));
    process.emit('SIGTERM', 'SIGTERM');
    await stopped;
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGINT', 'SIGINT');
    expect(repeats).toEqual(['SIGTERM', 'SIGINT']);
    expect(logged.map(([obj, msg]) => [obj, msg])).toEqual([
      [{ signal: 'SIGTERM' }, 'shutting down'],
      [{ signal: 'SIGTERM' }, 'stop signal while shutting down'],
      [{ signal: 'SIGINT' }, 'stop signal while shutting down'],
    ]);
    expect(listeners()).toEqual({ term: before.term + 1, int: before.int + 1 });
  });
});
