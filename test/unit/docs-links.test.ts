import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { docFiles, markdownAnchors, relativeLinks, REPO } from '../support/docs.js';

// Every relative link of README.md and docs/**/*.md points at a file of the repository, and its #anchor at a
// heading of that file (GitHub's anchors), so the runbooks' cross-references cannot rot.
describe('the links in the docs', () => {
  it('recognises GitHub anchors and relative links', () => {
    const md =
      '# A `b` c: d\n## A `b` c: d\n```sh\n# not a heading [x](nope.md)\n```\n[y](z.md#q) `[w](v.md)` [h](https://x)\n';
    expect([...markdownAnchors(md)]).toEqual(['a-b-c-d', 'a-b-c-d-1']);
    expect(relativeLinks(md)).toEqual([{ target: 'z.md#q', line: 6 }]);
    // A fence inside a blockquote hides its content as well.
    expect(relativeLinks('> ```sh\n> # [x](nope.md)\n> ```\n[y](z.md)\n')).toEqual([
      { target: 'z.md', line: 4 },
    ]);
  });

  it('every relative link and anchor resolves', () => {
    const broken: string[] = [];
    const anchorsOf = new Map<string, Set<string>>();
    for (const file of docFiles()) {
      const text = readFileSync(join(REPO, file), 'utf8');
      for (const { target, line } of relativeLinks(text)) {
        const [path, anchor] = target.split('#', 2) as [string, string | undefined];
        const abs = path ? join(REPO, dirname(file), decodeURIComponent(path)) : join(REPO, file);
        if (!existsSync(abs)) {
          broken.push(`${file}:${line}: ${target}: no such file`);
          continue;
        }
        if (!anchor || !abs.endsWith('.md') || statSync(abs).isDirectory()) continue;
        if (!anchorsOf.has(abs)) anchorsOf.set(abs, markdownAnchors(readFileSync(abs, 'utf8')));
        if (!anchorsOf.get(abs)!.has(anchor))
          broken.push(`${file}:${line}: ${target}: no heading #${anchor}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
