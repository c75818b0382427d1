"""Write a minimal VS Code extension package (.vsix) for the test: publisher llmops-test, name hello."""

from __future__ import annotations

import json
import sys
import zipfile

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension=".json" ContentType="application/json"/>'
    '<Default Extension=".vsixmanifest" ContentType="text/xml"/></Types>'
)
MANIFEST = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<PackageManifest Version="2.0.0" xmlns="http://schemas.microsoft.com/developer/vsx-schema/2011">'
    '<Metadata><Identity Language="en-US" Id="hello" Version="0.0.1" Publisher="llmops-test"/>'
    "<DisplayName>hello</DisplayName><Description>test extension</Description></Metadata>"
    '<Installation><InstallationTarget Id="Microsoft.VisualStudio.Code"/></Installation>'
    "<Dependencies/><Assets>"
    '<Asset Type="Microsoft.VisualStudio.Code.Manifest" Path="extension/package.json" Addressable="true"/>'
    "</Assets></PackageManifest>"
)
PACKAGE = {"name": "hello", "publisher": "llmops-test", "version": "0.0.1", "engines": {"vscode": "^1.80.0"}}

with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("[Content_Types].xml", CONTENT_TYPES)
    z.writestr("extension.vsixmanifest", MANIFEST)
    z.writestr("extension/package.json", json.dumps(PACKAGE))
