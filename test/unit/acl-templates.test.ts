/** Template syntax and the grant rule for templates (pure). */
import { expect } from 'chai';
import { assertTemplateInputsGranted, parseGrantSpec, parseTemplate, templateReferences, validateGrants } from '../../src/acl/index.js';

describe('acl templates', () => {
  it('parses {{ secret "NAME" }} and {{ "TEXT" }} and leaves the rest as written', () => {
    expect(parseTemplate('user=app\npass={{ secret "db_password" }}\n{{"{{"}}literal}}')).to.deep.equal([
      { text: 'user=app\npass=' },
      { secret: 'db_password' },
      { text: '\n' },
      { text: '{{' },
      { text: 'literal}}' },
    ]);
    expect(parseTemplate('{{secret "a"}}{{  secret   "b"  }}')).to.deep.equal([{ secret: 'a' }, { secret: 'b' }]);
    expect(parseTemplate('')).to.deep.equal([]);
    expect(templateReferences('{{ secret "a" }} {{ secret "b" }} {{ secret "a" }}')).to.deep.equal(['a', 'b']);
  });

  it('refuses anything else, naming line and column but never the text', () => {
    const cases: [string, RegExp][] = [
      ['a\nb {{ secret "x" ', /line 2, column 3: an action opened with "\{\{" is never closed/],
      ['{{ secert "topsecretword" }}', /line 1, column 1: the only actions are/],
      ['{{ secret x }}', /the only actions are/],
      ['{{ .Env.HOME }}', /the only actions are/],
      ['{{ secret "a/b" }}', /line 1, column 1: .*secret/],
    ];
    for (const [text, message] of cases) {
      expect(() => parseTemplate(text, 'conf'), text).to.throw(message);
      try {
        parseTemplate(text, 'conf');
      } catch (err) {
        expect((err as Error).message).to.match(/^template "conf"/);
        expect((err as Error).message).to.not.include('topsecretword');
      }
    }
  });

  it('takes template=true in grant specs and in the REST form', () => {
    expect(parseGrantSpec('app_conf_tmpl,target=app.conf,template=true')).to.deep.equal({ source: 'app_conf_tmpl', target: 'app.conf', uid: 0, gid: 0, mode: 0o444, template: true });
    expect(parseGrantSpec('a,template=false')).to.deep.equal({ source: 'a', target: 'a', uid: 0, gid: 0, mode: 0o444 });
    expect(() => parseGrantSpec('a,template=yes')).to.throw(/template must be true or false/);
    expect(validateGrants([{ source: 't', target: 'c', template: true }])[0]).to.include({ template: true });
    expect(() => validateGrants([{ source: 't', template: 'true' }])).to.throw(/template must be true or false/);
  });

  it('allows references only to secrets the same service is granted as files', () => {
    const tmpl = { source: 't', target: 'app.conf', uid: 0, gid: 0, mode: 0o444, template: true };
    const db = { source: 'db', target: 'db', uid: 0, gid: 0, mode: 0o400 };
    expect(() => assertTemplateInputsGranted('app', tmpl, ['db'], [tmpl, db])).not.to.throw();
    expect(() => assertTemplateInputsGranted('app', tmpl, ['db', 'other'], [tmpl, db])).to.throw(/references "other", not granted to the service/);
    // Another template grant does not count as granting its source's value.
    const other = { ...tmpl, source: 'x', target: 'x.conf' };
    expect(() => assertTemplateInputsGranted('app', tmpl, ['x'], [tmpl, other])).to.throw(/references "x"/);
  });
});
