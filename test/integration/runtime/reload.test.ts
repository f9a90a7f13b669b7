import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  call,
  dropKeyspaces,
  keyspaceOf,
  manifests,
  startInProcess,
  uniqueSuffix,
  type InProcessRuntime,
} from '../../support/runtime-harness';
import { waitFor } from '../../stack/wait';

interface Listing {
  namespaces: { name: string; ready: boolean }[];
  errors: string[];
}

describe('namespace files are reloaded on change', () => {
  const run = uniqueSuffix();
  const first = `rl-a-${run}`;
  const second = `rl-b-${run}`;
  let rt: InProcessRuntime;
  const list = async (): Promise<Listing> => (await (await fetch(`${rt.url}/v1/namespaces`)).json()) as Listing;

  beforeAll(async () => {
    rt = await startInProcess([{ name: first, counterType: 'Accurate' }]);
  });
  afterAll(async () => {
    await rt.close();
    await dropKeyspaces([keyspaceOf(first), keyspaceOf(second)]);
  });

  it('serves a namespace added to the directory, provisioning its tables', async () => {
    fs.writeFileSync(path.join(rt.dir, 'second.yaml'), manifests([{ name: second, counterType: 'Eventual' }]));
    await waitFor('the new namespace to be ready', async () =>
      (await list()).namespaces.some((n) => n.name === second && n.ready),
    );
    const reply = await call(rt.url, 'AddCount', { namespace: second, counter_name: 'x', delta: 1 });
    expect(reply.status).toBe(200);
  });

  it('keeps answering a namespace whose document changes: no 404 or 503 while the new settings load', async () => {
    let stop = false;
    const statuses = new Map<number, number>();
    const load = (async () => {
      while (!stop) {
        const reply = await call(rt.url, 'AddAndGetCount', { namespace: first, counter_name: 'reload', delta: 1 });
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
      }
    })();
    for (const coalesceMs of [150, 200, 250]) {
      fs.writeFileSync(
        path.join(rt.dir, 'namespaces.yaml'),
        manifests([{ name: first, counterType: 'Accurate', spec: { rollup: { coalesceMs, settleMarginMs: 1200 } } }]),
      );
      await waitFor(`coalesceMs ${coalesceMs} to be served`, async () => {
        const listing = (await (await fetch(`${rt.url}/v1/namespaces`)).json()) as {
          namespaces: { name: string; config: { rollup: { coalesceMs: number } } }[];
        };
        return listing.namespaces.find((n) => n.name === first)?.config.rollup.coalesceMs === coalesceMs;
      });
    }
    stop = true;
    await load;
    expect([...statuses.keys()]).toEqual([200]);
    expect(statuses.get(200)).toBeGreaterThan(10);
  });

  it('rejects a broken document with file and field, and keeps serving the others', async () => {
    fs.writeFileSync(
      path.join(rt.dir, 'second.yaml'),
      manifests([{ name: second, counterType: 'Eventual', spec: { eventStorage: { bucketsPerCounter: 0 } } }]),
    );
    await waitFor('the error to be reported', async () => (await list()).errors.length > 0);
    const listing = await list();
    expect(listing.errors).toEqual([
      expect.stringMatching(
        new RegExp(`second\\.yaml \\(${second}\\): spec\\.eventStorage\\.bucketsPerCounter: must be >= 1`),
      ),
    ]);
    expect(listing.namespaces.map((n) => n.name)).toEqual([first]);
    expect((await call(rt.url, 'AddAndGetCount', { namespace: first, counter_name: 'y', delta: 2 })).body.count).toBe(
      2,
    );
    expect((await call(rt.url, 'GetCount', { namespace: second, counter_name: 'x' })).status).toBe(404);
  });

  it('stops serving a namespace whose document is removed', async () => {
    fs.rmSync(path.join(rt.dir, 'second.yaml'));
    await waitFor('the error to clear', async () => (await list()).errors.length === 0);
    fs.writeFileSync(path.join(rt.dir, 'namespaces.yaml'), '# emptied\n');
    await waitFor('no namespace to be served', async () => (await list()).namespaces.length === 0);
    expect((await call(rt.url, 'GetCount', { namespace: first, counter_name: 'y' })).status).toBe(404);
  });
});
