import { mapLimit, Semaphore } from './concurrency';

/** A task that stays running until its test lets it finish. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('Semaphore', () => {
  it('runs at most `limit` tasks at once and starts the waiting ones in order as slots free up', async () => {
    const slots = new Semaphore(2);
    const gates = [gate(), gate(), gate(), gate()];
    const started: number[] = [];
    const runs = gates.map((g, i) =>
      slots.run(async () => {
        started.push(i);
        await g.opened;
        return i * 10;
      }),
    );
    await turn();
    expect(started).toEqual([0, 1]);
    expect(slots.active).toBe(2);
    gates[1]!.open();
    await turn();
    expect(started).toEqual([0, 1, 2]);
    gates[0]!.open();
    await turn();
    expect(started).toEqual([0, 1, 2, 3]);
    gates[2]!.open();
    gates[3]!.open();
    expect(await Promise.all(runs)).toEqual([0, 10, 20, 30]);
    expect(slots.active).toBe(0);
  });

  it('releases the slot of a task that fails, and passes its error on', async () => {
    const slots = new Semaphore(1);
    await expect(slots.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(slots.active).toBe(0);
    await expect(slots.run(() => Promise.resolve('next'))).resolves.toBe('next');
  });

  it('idle() waits for every task started before it, and leaves every slot free', async () => {
    const slots = new Semaphore(3);
    const g = gate();
    let finished = false;
    void slots.run(async () => {
      await g.opened;
      finished = true;
    });
    let idle = false;
    const waiting = slots.idle().then(() => (idle = true));
    await turn();
    expect(idle).toBe(false);
    g.open();
    await waiting;
    expect(finished).toBe(true);
    expect(slots.active).toBe(0);
  });

  it('refuses a limit below one', () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});

describe('mapLimit', () => {
  it('maps every item in order, never more than `limit` at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3, 0], 3, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n));
      running--;
      return n * 2;
    });
    expect(out).toEqual([10, 2, 8, 4, 6, 0]);
    expect(peak).toBe(3);
  });
});
