/**
 * The `images:` section of kjx.yaml: container image archives baked into the
 * guest at /usr/share/kjx/images/<name>.tar, so container runtimes load them
 * without a registry (docs/containers.md, "Images").
 *
 * Each entry is either a host archive (`archive:`, what `docker save`,
 * `podman save` or `ctr images export` write) or an image kjx builds itself
 * (`from:`), for now a busybox-only image from Debian's busybox-static. The
 * loader checks host archives (exists, an uncompressed tar holding manifest.json
 * or index.json) and reports problems at the `archive:` line.
 */
import { z } from 'zod';
import { parseImageReference } from './image-ref.js';
import { expected } from './messages.js';

/** Images kjx can build itself. busybox-static: /bin/busybox with its applets, nothing else. */
export const IMAGE_BUILDERS = ['busybox-static'] as const;
export type ImageBuilder = (typeof IMAGE_BUILDERS)[number];

/** A host archive baked as it is. */
export interface ArchiveImageSpec {
  kind: 'archive';
  /** File name in the guest: /usr/share/kjx/images/<name>.tar */
  name: string;
  /** Absolute host path after loadSpec/parseSpec. */
  archive: string;
  /** As written in kjx.yaml, for messages. */
  archiveRef: string;
}

/** An image kjx builds (src/pipeline/images-stage.ts). */
export interface BuiltImageSpec {
  kind: 'build';
  name: string;
  from: ImageBuilder;
  /** Repository ("kjx/smoke") and tag the image is named by inside the archive. */
  image: string;
  tag: string;
  /** The image config's Cmd. */
  cmd: string[];
}

export type ImageSpec = ArchiveImageSpec | BuiltImageSpec;

/** The archive's file name: no "/" and nothing hidden. */
const IMAGE_NAME_RE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

const imageObject = z
  .object({
    name: z
      .string()
      .regex(IMAGE_NAME_RE, {
        error: (iss) =>
          expected('a name of lowercase letters, digits, ".", "_" and "-" (up to 64)', iss.input),
      })
      .describe('File name of the archive in the guest: /usr/share/kjx/images/<name>.tar.'),
    archive: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Host file to bake, relative to the directory of kjx.yaml: an uncompressed tar from docker save, podman save or ctr images export (manifest.json or index.json inside). Exactly one of archive or from.',
      ),
    from: z
      .enum(IMAGE_BUILDERS)
      .optional()
      .describe(
        `Build the image instead: ${IMAGE_BUILDERS.join(', ')} (busybox and its applets from the Debian package, nothing else). Exactly one of archive or from.`,
      ),
    image: z
      .string()
      .optional()
      .describe('Only with from: the name:tag inside the archive (default kjx/<name>:latest).'),
    cmd: z
      .array(z.string())
      .min(1)
      .optional()
      .describe('Only with from: the command the image runs by default (default ["/bin/sh"]).'),
  })
  .strict()
  .superRefine((i, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (i.archive !== undefined && i.from !== undefined)
      issue('from', 'give either "archive" or "from", not both');
    if (i.archive === undefined && i.from === undefined)
      ctx.addIssue({
        code: 'custom',
        message: 'an image needs "archive" (a host file) or "from" (built by kjx)',
      });
    if (i.archive !== undefined) {
      if (i.image !== undefined)
        issue('image', '"image" is only for images built with "from" (an archive names its own)');
      if (i.cmd !== undefined) issue('cmd', '"cmd" is only for images built with "from"');
    }
    if (i.image !== undefined) {
      const ref = parseImageReference(i.image);
      if (typeof ref === 'string')
        ctx.addIssue({ code: 'custom', path: ['image'], input: i.image, message: ref });
    } else if (i.from !== undefined && typeof parseImageReference(`kjx/${i.name}`) === 'string') {
      issue('name', `"kjx/${i.name}" is no image name; give one with "image:"`);
    }
  })
  .transform((i): ImageSpec => {
    if (i.archive !== undefined)
      return { kind: 'archive', name: i.name, archive: i.archive, archiveRef: i.archive };
    const ref = parseImageReference(i.image ?? `kjx/${i.name}:latest`);
    // the refinement has vetted `image`; a name that made a bad default reference is caught there too
    const { image, tag } =
      typeof ref === 'string' ? { image: `kjx/${i.name}`, tag: 'latest' } : { image: ref.name, tag: ref.tag };
    return {
      kind: 'build',
      name: i.name,
      from: i.from ?? 'busybox-static',
      image,
      tag,
      cmd: i.cmd ?? ['/bin/sh'],
    };
  })
  .describe('One container image archive to bake into the guest.');

export const imagesList = z.array(imageObject).superRefine((images, ctx) => {
  const firstAt = new Map<string, number>();
  images.forEach((i, n) => {
    const first = firstAt.get(i.name);
    if (first === undefined) firstAt.set(i.name, n);
    else
      ctx.addIssue({
        code: 'custom',
        path: [n, 'name'],
        message: `${JSON.stringify(i.name)} is already given by images[${first}]`,
      });
  });
});
