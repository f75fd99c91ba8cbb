/**
 * Container image archives from the host, for `images:` in kjx.yaml, read whole
 * for the build and parsed with our tar reader, after the check the spec loader
 * runs (spec/image-archive-check.ts).
 */
import { readFileSync } from 'node:fs';
import { imageArchiveProblem, memberName } from '../spec/image-archive-check.js';
import { KjxError } from '../util/errors.js';
import { parseTar, type TarEntry } from './tar.js';

/** The JSON members of a container image archive, checked when the build reads it. */
const IMAGE_FILES = ['manifest.json', 'index.json', 'oci-layout'];

/**
 * Read a host image archive whole for the build, checked like the spec loader does
 * and then parsed entry by entry.
 * @param what names it in messages, e.g. "images[0] (app): archive ./app.tar"
 * @throws KjxError INPUT_NOT_FOUND when it is gone, SPEC_INVALID when it is not an image archive
 */
export function readImageArchive(path: string, what: string): Buffer {
  const hint = 'images: archives are what docker save, podman save or ctr images export write';
  const problem = imageArchiveProblem(path);
  if (problem)
    throw new KjxError(
      problem.startsWith('does not exist') ? 'INPUT_NOT_FOUND' : 'SPEC_INVALID',
      `${what} ${problem}`,
      {
        hint,
      },
    );
  const data = readFileSync(path);
  let entries: TarEntry[];
  try {
    entries = parseTar(data, path);
  } catch (cause) {
    throw new KjxError('SPEC_INVALID', `${what} is damaged: ${(cause as Error).message}`, { hint, cause });
  }
  for (const e of entries) {
    const name = memberName(e.name);
    if (e.type !== 'file' || !IMAGE_FILES.includes(name)) continue;
    try {
      JSON.parse(e.data.toString('utf8'));
    } catch (cause) {
      throw new KjxError(
        'SPEC_INVALID',
        `${what} is damaged: ${name} is not valid JSON (${(cause as Error).message})`,
        {
          hint,
          cause,
        },
      );
    }
  }
  return data;
}
