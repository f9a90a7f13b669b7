import * as path from 'node:path';
import { nodeEnabled, nodeWanted } from './node-network';
import { stateDir } from './paths';

describe('node-network', () => {
  it('wants the node unless TALLY_STACK_NODE=0', () => {
    expect(nodeWanted({})).toBe(true);
    expect(nodeWanted({ TALLY_STACK_NODE: '1' })).toBe(true);
    expect(nodeWanted({ TALLY_STACK_NODE: '0' })).toBe(false);
  });

  it('runs no node when it is not wanted, or on a cluster named by KUBECONFIG', () => {
    expect(nodeEnabled({ TALLY_STACK_NODE: '0' })).toBe(false);
    expect(nodeEnabled({ KUBECONFIG: '/somewhere/else/kubeconfig' })).toBe(false);
  });

  it("counts the stack's own kubeconfig (exported by . .tally/env) as its own cluster", () => {
    const own = path.join(stateDir(), 'kube', 'admin.kubeconfig');
    // Whether it then runs the node also depends on another stack on the machine having it.
    expect(nodeEnabled({ KUBECONFIG: own })).toBe(nodeEnabled({}));
  });
});
