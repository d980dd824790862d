import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { weightedShard } from './shards.js';

/**
 * `--shard=i/N` by weight instead of vitest's default (equal file counts by path hash): each shard of
 * test/env/run-tests.ts gets about the same integration time. Sorting within a shard is vitest's own.
 */
export default class WeightedSequencer extends BaseSequencer {
  override async shard(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { index, count } = this.ctx.config.shard!;
    return weightedShard(
      files,
      (s) => ({ project: s.project.name, path: s.moduleId.slice(this.ctx.config.root.length) }),
      index,
      count,
    );
  }
}
