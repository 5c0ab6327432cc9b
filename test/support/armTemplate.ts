/**
 * Reads a compiled ARM template (the output of `bicep build`) the way ARM would lay it out, so
 * tests assert on what is deployed rather than on Bicep text: nested module deployments are
 * followed with their parameters, and template expressions are evaluated symbolically. Functions
 * whose value only exists at deploy time (uniqueString, reference to a resource, listKeys,
 * deployer()) evaluate to readable placeholders such as `principal(id-func-token)`, which is
 * exactly the level at which "who gets which role where" is reviewed.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A deploy-time value we cannot know: kept as a readable path. */
export class Sym {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Json | Sym | Value[] | { [key: string]: Value };

interface Template {
  parameters?: Record<string, { type: string; defaultValue?: Json }>;
  variables?: Record<string, Json>;
  resources: ArmResourceJson[] | Record<string, ArmResourceJson>;
  outputs?: Record<string, { type: string; value: Json }>;
}

interface ArmResourceJson {
  type: string;
  apiVersion: string;
  name: Json;
  condition?: Json;
  scope?: Json;
  properties?: Json;
  identity?: Json;
  kind?: Json;
  existing?: boolean;
  copy?: unknown;
  [key: string]: unknown;
}

export interface DeployedResource {
  /** Module path, e.g. `rbac/role-func-invoices`. */
  module: string;
  type: string;
  apiVersion: string;
  name: string;
  /** false only when the condition is known to be false with the parameters used. */
  deployed: boolean;
  scope: string;
  body: Record<string, Value>;
}

interface Context {
  template: Template;
  params: Record<string, Value>;
  module: string;
  copyIndex?: number;
}

// ------------------------------------------------------------------ expression parsing

type Node =
  | { kind: 'lit'; value: string | number | boolean | null }
  | { kind: 'call'; name: string; args: Node[] }
  | { kind: 'member'; object: Node; property: Node };

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) i += 1;
    else if (c === "'") {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= text.length) throw new Error(`unterminated string in ${text}`);
        if (text[j] === "'" && text[j + 1] === "'") {
          value += "'";
          j += 2;
        } else if (text[j] === "'") break;
        else value += text[j++];
      }
      tokens.push(`'${value}`);
      i = j + 1;
    } else if ('(),.[]'.includes(c)) {
      tokens.push(c);
      i += 1;
    } else {
      const match = /^[-\w]+/.exec(text.slice(i));
      if (!match) throw new Error(`unexpected ${c} in ${text}`);
      tokens.push(match[0]);
      i += match[0].length;
    }
  }
  return tokens;
}

function parse(text: string): Node {
  const tokens = tokenize(text);
  let pos = 0;
  const next = (): string => tokens[pos++];
  const expect = (t: string): void => {
    const got = next();
    if (got !== t) throw new Error(`expected ${t}, got ${got} in ${text}`);
  };
  function primary(): Node {
    const t = next();
    if (t.startsWith("'")) return { kind: 'lit', value: t.slice(1) };
    if (/^-?\d+$/.test(t)) return { kind: 'lit', value: Number(t) };
    if (tokens[pos] !== '(') {
      if (t === 'true' || t === 'false') return { kind: 'lit', value: t === 'true' };
      if (t === 'null') return { kind: 'lit', value: null };
    }
    expect('(');
    const args: Node[] = [];
    if (tokens[pos] !== ')') {
      for (;;) {
        args.push(expression());
        if (tokens[pos] === ',') next();
        else break;
      }
    }
    expect(')');
    return { kind: 'call', name: t, args };
  }
  function expression(): Node {
    let node = primary();
    for (;;) {
      if (tokens[pos] === '.') {
        next();
        node = { kind: 'member', object: node, property: { kind: 'lit', value: next() } };
      } else if (tokens[pos] === '[') {
        next();
        const property = expression();
        expect(']');
        node = { kind: 'member', object: node, property };
      } else return node;
    }
  }
  const node = expression();
  if (pos !== tokens.length) throw new Error(`trailing tokens in ${text}`);
  return node;
}

// ------------------------------------------------------------------ evaluation

const str = (v: Value): string => (v instanceof Sym ? v.text : typeof v === 'string' ? v : JSON.stringify(v));

function typeAndNames(type: string, names: Value[]): string {
  const segments = type.split('/');
  const parts = [`${segments[0]}/${segments[1]}`, str(names[0])];
  for (let k = 2; k < segments.length; k += 1) parts.push(segments[k], str(names[k - 1]));
  return parts.join('/');
}

function member(object: Value, property: Value): Value {
  if (object instanceof Sym) {
    if (property === 'principalId' && /\.identity$|^ref\(/.test(object.text)) {
      return new Sym(
        `principal(${object.text
          .replace(/^ref\((.*?)\)(\.identity)?$/, '$1')
          .split('/')
          .pop()})`,
      );
    }
    return new Sym(`${object.text}.${str(property)}`);
  }
  if (Array.isArray(object)) return object[Number(property)] ?? null;
  if (object && typeof object === 'object') {
    const value = (object as Record<string, Value>)[str(property)];
    if (value === undefined) throw new Error(`no property ${str(property)}`);
    return value;
  }
  throw new Error(`member ${str(property)} of ${str(object)}`);
}

function moduleDeployment(ctx: Context, name: string): ArmResourceJson | undefined {
  return resourceList(ctx.template).find(
    (r) => r.type === 'Microsoft.Resources/deployments' && str(evaluateValue(r.name as Json, ctx)) === name,
  );
}

function childContext(ctx: Context, deployment: ArmResourceJson): Context {
  const properties = deployment.properties as unknown as {
    template: Template;
    parameters?: Record<string, { value: Json } | string>;
  };
  const params: Record<string, Value> = {};
  for (const [key, entry] of Object.entries(properties.parameters ?? {})) {
    // Bicep emits `[if(cond, createObject('value', a), createObject('value', b))]` for ternaries.
    params[key] =
      typeof entry === 'string'
        ? member(evaluateValue(entry, ctx), 'value')
        : evaluateValue(entry.value, ctx);
  }
  const name = str(evaluateValue(deployment.name as Json, ctx));
  return { template: properties.template, params, module: ctx.module ? `${ctx.module}/${name}` : name };
}

function call(name: string, args: Node[], ctx: Context): Value {
  const values = (): Value[] => args.map((a) => evaluate(a, ctx));
  switch (name) {
    case 'parameters': {
      const key = str(evaluate(args[0], ctx));
      if (key in ctx.params) return ctx.params[key];
      const declared = ctx.template.parameters?.[key];
      if (declared && 'defaultValue' in declared) return evaluateValue(declared.defaultValue as Json, ctx);
      throw new Error(`${ctx.module || 'main'}: parameter ${key} has no value`);
    }
    case 'variables':
      return evaluateValue(ctx.template.variables?.[str(evaluate(args[0], ctx))] as Json, ctx);
    case 'format': {
      const [pattern, ...rest] = values();
      return str(pattern).replace(/\{(\d+)\}/g, (_, i: string) => str(rest[Number(i)]));
    }
    case 'concat': {
      const vs = values();
      return vs.every(Array.isArray) ? (vs as Value[][]).flat() : vs.map(str).join('');
    }
    case 'if':
      return evaluate(args[0], ctx) === true ? evaluate(args[1], ctx) : evaluate(args[2], ctx);
    case 'not':
      return !(evaluate(args[0], ctx) === true);
    case 'and':
      return values().every((v) => v === true);
    case 'or':
      return values().some((v) => v === true);
    case 'equals': {
      const [a, b] = values();
      return str(a) === str(b);
    }
    case 'empty': {
      const [v] = values();
      if (v instanceof Sym) return false;
      if (v === null || v === '') return true;
      if (Array.isArray(v)) return v.length === 0;
      if (typeof v === 'object') return Object.keys(v).length === 0;
      return false;
    }
    case 'contains': {
      const [container, item] = values();
      if (Array.isArray(container)) return container.some((c) => str(c) === str(item));
      if (container && typeof container === 'object' && !(container instanceof Sym))
        return str(item) in container;
      return str(container).includes(str(item));
    }
    case 'indexOf': {
      const [container, item] = values();
      return Array.isArray(container)
        ? container.findIndex((c) => str(c) === str(item))
        : str(container).indexOf(str(item));
    }
    case 'length': {
      const [v] = values();
      return Array.isArray(v) ? v.length : str(v).length;
    }
    case 'union': {
      const vs = values();
      return Object.assign({}, ...vs.map((v) => v as object)) as Value;
    }
    case 'createObject': {
      const vs = values();
      const out: Record<string, Value> = {};
      for (let i = 0; i < vs.length; i += 2) out[str(vs[i])] = vs[i + 1];
      return out;
    }
    case 'copyIndex':
      if (ctx.copyIndex === undefined) throw new Error('copyIndex() outside a copy loop');
      return ctx.copyIndex + (args.length > 0 ? Number(evaluate(args[args.length - 1], ctx)) : 0);
    case 'range': {
      const [start, count] = values().map(Number);
      return Array.from({ length: count }, (_, i) => start + i);
    }
    case 'null':
      return null;
    case 'true':
      return true;
    case 'false':
      return false;
    case 'createArray':
      return values();
    case 'toLower':
      return str(values()[0]).toLowerCase();
    case 'take': {
      const [v, n] = values();
      return str(v).slice(0, Number(n));
    }
    case 'string':
      return str(values()[0]);
    case 'json':
      return JSON.parse(str(values()[0])) as Json;
    case 'uniqueString':
      return 'TOKEN';
    case 'guid':
      return `guid(${values().map(str).join(',')})`;
    case 'subscription':
      return { id: '/subscriptions/SUB', subscriptionId: 'SUB', tenantId: 'TENANT' };
    case 'tenant':
      return { tenantId: 'TENANT' };
    case 'resourceGroup':
      return { id: '/subscriptions/SUB/resourceGroups/RG', name: 'RG', location: 'westeurope' };
    case 'deployer':
      return { objectId: new Sym('deployer') };
    case 'environment':
      return { resourceManager: 'https://management.azure.com/', name: 'AzureCloud' };
    case 'resourceId':
    case 'subscriptionResourceId':
    case 'tenantResourceId': {
      const vs = values();
      // resourceId may start with a subscription id and/or group name: types always contain '/'.
      const typeIndex = vs.findIndex((v) => typeof v === 'string' && /^[\w.]+\/\w/.test(v));
      return typeAndNames(str(vs[typeIndex]), vs.slice(typeIndex + 1));
    }
    case 'extensionResourceId': {
      const [, type, ...names] = values();
      return typeAndNames(str(type), names);
    }
    case 'reference': {
      const target = str(evaluate(args[0], ctx));
      const deployment = /^Microsoft\.Resources\/deployments\/(.+)$/.exec(target);
      if (deployment) {
        const module = moduleDeployment(ctx, deployment[1]);
        if (!module) throw new Error(`reference to unknown module ${deployment[1]}`);
        const child = childContext(ctx, module);
        const outputs: Record<string, Value> = {};
        for (const [key, output] of Object.entries(child.template.outputs ?? {})) {
          outputs[key] = { value: evaluateValue(output.value, child) };
        }
        return { outputs };
      }
      return new Sym(`ref(${target})`);
    }
    default:
      return new Sym(`${name}(${values().map(str).join(',')})`);
  }
}

function evaluate(node: Node, ctx: Context): Value {
  if (node.kind === 'lit') return node.value;
  if (node.kind === 'call') return call(node.name, node.args, ctx);
  return member(evaluate(node.object, ctx), evaluate(node.property, ctx));
}

function evaluateValue(value: Json, ctx: Context): Value {
  if (typeof value === 'string') {
    if (value.startsWith('[[')) return value.slice(1);
    if (value.startsWith('[') && value.endsWith(']')) return evaluate(parse(value.slice(1, -1)), ctx);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => evaluateValue(v, ctx));
  if (value && typeof value === 'object') {
    const out: Record<string, Value> = {};
    for (const [k, v] of Object.entries(value)) out[str(evaluateValue(k, ctx))] = evaluateValue(v, ctx);
    return out;
  }
  return value;
}

function resourceList(template: Template): ArmResourceJson[] {
  return Array.isArray(template.resources) ? template.resources : Object.values(template.resources);
}

/** Every resource of the template and its modules, with expressions evaluated. */
export function deployedResources(template: object, parameters: Record<string, Json>): DeployedResource[] {
  const out: DeployedResource[] = [];
  const visit = (outer: Context): void => {
    for (const resource of resourceList(outer.template)) {
      if (resource.existing) continue;
      const copy = resource.copy as { count: Json } | undefined;
      const count = copy ? Number(evaluateValue(copy.count, outer)) : 1;
      for (let index = 0; index < count; index += 1) {
        visitOne(resource, copy ? { ...outer, copyIndex: index } : outer);
      }
    }
  };
  const visitOne = (resource: ArmResourceJson, ctx: Context): void => {
    {
      const deployed = resource.condition === undefined || evaluateValue(resource.condition, ctx) !== false;
      if (resource.type === 'Microsoft.Resources/deployments') {
        visit(childContext(ctx, resource));
        return;
      }
      const body: Record<string, Value> = {};
      for (const [key, value] of Object.entries(resource)) {
        if (
          ['type', 'apiVersion', 'name', 'condition', 'scope', 'dependsOn', 'copy', 'existing'].includes(key)
        )
          continue;
        body[key] = evaluateValue(value as Json, ctx);
      }
      const name = str(evaluateValue(resource.name, ctx));
      out.push({
        module: ctx.module,
        type: resource.type,
        apiVersion: resource.apiVersion,
        name,
        deployed,
        scope: resource.scope === undefined ? 'resourceGroup' : str(evaluateValue(resource.scope, ctx)),
        body,
      });
    }
  };
  visit({ template: template as Template, params: parameters, module: '' });
  return out;
}
