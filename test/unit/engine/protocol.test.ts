import * as assert from 'node:assert/strict';
import { CancelledError, UserError } from '../../../src/core/errors.js';
import { deserializeError, serializeError } from '../../../src/core/engine/protocol.js';
import { describeTensorProblem, prepareForPost } from '../../../src/core/engine/tensors.js';

describe('engine: protocol', function () {
  it('keeps UserError (with file and hint) and CancelledError across the hop', function () {
    const user = deserializeError(structuredClone(serializeError(new UserError('bad header', '/m/model.safetensors', 'Download it again.'))));
    assert.ok(user instanceof UserError);
    assert.equal(user.message, '/m/model.safetensors: bad header Download it again.');
    assert.equal(user.file, '/m/model.safetensors');
    assert.equal(user.hint, 'Download it again.');

    const cancelled = deserializeError(structuredClone(serializeError(new CancelledError('stopped'))));
    assert.ok(cancelled instanceof CancelledError);
    assert.equal(cancelled.message, 'stopped');

    const other = deserializeError(structuredClone(serializeError(new RangeError('too big'))));
    assert.equal(other.name, 'RangeError');
    assert.equal(other.message, 'too big');
  });

  it('prepares arrays so that only their own bytes move', function () {
    const whole = new Float32Array(4);
    assert.equal(prepareForPost(whole, false).transfer, undefined, 'cloned, not taken from the caller');
    assert.equal(prepareForPost(whole, true).transfer, whole.buffer);

    const part = new Float32Array(100).subarray(10, 12);
    const prepared = prepareForPost(part, false);
    assert.notEqual(prepared.data.buffer, part.buffer);
    assert.equal(prepared.data.buffer.byteLength, 8);
    assert.equal(prepared.transfer, prepared.data.buffer);

    const shared = new Int32Array(new SharedArrayBuffer(16));
    assert.deepEqual(prepareForPost(shared, true), { data: shared });
  });

  it('describes inconsistent tensors', function () {
    assert.equal(describeTensorProblem({ type: 'int64', dims: [2], data: new BigInt64Array(2) }), undefined);
    assert.match(describeTensorProblem({ type: 'int64', dims: [2], data: new Int32Array(2) as never }) ?? '', /needs a BigInt64Array, got Int32Array/);
    assert.match(describeTensorProblem({ type: 'float32', dims: [2, -1], data: new Float32Array(2) }) ?? '', /invalid dims/);
  });
});
