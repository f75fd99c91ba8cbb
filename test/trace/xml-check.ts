/**
 * A small XML well-formedness checker for the SVG tests: tags balance, attributes are
 * quoted and unique, `&` starts a known entity or a character reference, no raw `<` in
 * text or attribute values, no characters XML 1.0 forbids. Not a full parser (no DTDs),
 * just enough to catch what an escaping bug produces. Throws with the offset.
 */

const NAME = /[A-Za-z_:][\w:.-]*/y;
const REF = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;
const FORBIDDEN = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

function decode(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number(e.slice(1)));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e]!;
  });
}

/** Check `xml` and return its root element (with decoded attributes and text). */
export function parseXml(xml: string): XmlElement {
  const bad = FORBIDDEN.exec(xml);
  if (bad) throw new Error(`forbidden character U+${bad[0].codePointAt(0)!.toString(16)} at ${bad.index}`);
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const fail = (what: string): never => {
    throw new Error(`${what} at offset ${i}: ${JSON.stringify(xml.slice(i, i + 40))}`);
  };
  const text = (s: string) => {
    const amp = s.indexOf('&');
    for (let j = amp; j >= 0; j = s.indexOf('&', j + 1)) {
      REF.lastIndex = j;
      if (!REF.test(s)) fail('bad entity reference');
    }
    if (s.includes('>') && s.includes(']]>')) fail('"]]>" in text');
    return decode(s);
  };
  while (i < xml.length) {
    if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
    } else if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i);
      if (end < 0 || stack.length === 0) fail('bad CDATA section');
      stack.at(-1)!.text += xml.slice(i + 9, end);
      i = end + 3;
    } else if (xml.startsWith('</', i)) {
      i += 2;
      NAME.lastIndex = i;
      const m = NAME.exec(xml) ?? fail('bad end tag');
      i += m[0].length;
      while (/\s/.test(xml[i] ?? '')) i++;
      if (xml[i] !== '>') fail('bad end tag');
      i++;
      const open = stack.pop();
      if (!open || open.name !== m[0]) fail(`end tag </${m[0]}> does not match <${open?.name}>`);
    } else if (xml[i] === '<') {
      i++;
      NAME.lastIndex = i;
      const m = NAME.exec(xml) ?? fail('bad start tag');
      i += m[0].length;
      const el: XmlElement = { name: m[0], attrs: {}, children: [], text: '' };
      for (;;) {
        const ws = /\s*/y;
        ws.lastIndex = i;
        const spaced = ws.exec(xml)![0].length > 0;
        i = ws.lastIndex;
        if (xml.startsWith('/>', i) || xml[i] === '>') break;
        if (!spaced) fail('attributes must be separated by white space');
        NAME.lastIndex = i;
        const a = NAME.exec(xml) ?? fail('bad attribute name');
        i += a[0].length;
        if (xml[i] !== '=') fail('attribute without value');
        const q = xml[i + 1];
        if (q !== '"' && q !== "'") fail('unquoted attribute value');
        const end = xml.indexOf(q!, i + 2);
        if (end < 0) fail('unterminated attribute value');
        const raw = xml.slice(i + 2, end);
        if (raw.includes('<')) fail('"<" in attribute value');
        if (a[0] in el.attrs) fail(`duplicate attribute ${a[0]}`);
        el.attrs[a[0]] = text(raw);
        i = end + 1;
      }
      const selfClosing = xml.startsWith('/>', i);
      i += selfClosing ? 2 : 1;
      if (stack.length) stack.at(-1)!.children.push(el);
      else if (root) fail('second root element');
      else root = el;
      if (!selfClosing) stack.push(el);
    } else {
      const next = xml.indexOf('<', i);
      const end = next < 0 ? xml.length : next;
      const s = xml.slice(i, end);
      if (stack.length === 0 && s.trim() !== '') fail('text outside the root element');
      if (stack.length) stack.at(-1)!.text += text(s);
      i = end;
    }
  }
  if (stack.length) throw new Error(`unclosed <${stack.at(-1)!.name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

/** Every element below `el` (itself included), depth first. */
export function allElements(el: XmlElement): XmlElement[] {
  return [el, ...el.children.flatMap(allElements)];
}

/** All text of `el` and below, in document order. */
export function textOf(el: XmlElement): string {
  return el.text + el.children.map(textOf).join('');
}
