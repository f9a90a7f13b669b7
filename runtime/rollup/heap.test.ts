import { DueHeap } from './heap';

describe('DueHeap', () => {
  it('pops in due order whatever the push order', () => {
    const heap = new DueHeap();
    const dues = Array.from({ length: 200 }, (_, i) => (i * 7919) % 1000);
    dues.forEach((d, i) => heap.push(`k${i}`, d));
    const popped: number[] = [];
    while (heap.size > 0) popped.push(heap.pop()!.due);
    expect(popped).toEqual([...dues].sort((a, b) => a - b));
    expect(heap.pop()).toBeUndefined();
  });
});
